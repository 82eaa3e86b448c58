"""The access matrix (issue 10, "How it must be shown"): every API endpoint and
every websocket frame that takes an id, tried by every identity that must not
reach firm A's matter M1 or its client C1.

The world is built through the real API (contacts, templates, invite rounds,
acceptance, removal, staff invitation), with a unique canary string planted in
everything of M1 / C1 that another party must not see. Each identity then
tries each route with a valid request (so the access check, not body
validation, answers) and the test asserts the documented refusal (404
``not_found`` for what they may not see, never 403 for another firm's objects;
403 ``forbidden`` for a plain staff member on an admin action of their own
firm; 401 ``unauthenticated`` without a session) and that no canary appears in
the answer's body or headers. The routes come from the app itself: a route
added later without an entry in ``SPECS`` fails the test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rtportal.access.sessions import issue_token
from rtportal.app import create_app
from rtportal.closecodes import CLOSE_UNAUTHENTICATED
from rtportal.db.models import Firm, Matter, Review, StaffUser, Tag
from rtportal.reviews.choose import today_in
from rtportal.reviews.enqueue import enqueue
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.invites import acceptance, kdf_body, login_secret, received
from tests.support.server import RunningServer
from tests.support.wsjson import HELLO
from tests.test_invites import _reset_address_counts
from tests.test_removal import workers

TIMEOUT = 20.0
MATRIX_TAG = "matrixTagOfFirmA_00000"  # a tag of firm A (22 base64url characters)
# Requests and frames the matrix must at least make: a route table that
# silently shrank (a spec that skips everyone) fails here.
MATRIX_FLOOR = 300

# --- identities --------------------------------------------------------------------------

# Groups of identities; a spec says what each group must get on a route.
ANON = "anon"  # no session
CLIENT = "client"  # a client of firm A who is not a member of M1 (another matter's, removed)
MEMBER = "member"  # C2: a client of M1 whose invite does not let them see applicants
FOREIGN = "foreign"  # the org admin of firm B
STAFF = "staff"  # a plain staff member of firm A, not responsible for M1

OK = "ok"  # allowed: 2xx, and nothing the identity may not see
SKIP = None  # not part of the matrix (allowed for this identity, or not an id route)

REFUSAL_CODES = {
    400: "invalid_link",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
}

Expect = int | str | None


@dataclass(frozen=True)
class Spec:
    """One route: a valid request, and what each identity group must get."""

    anon: Expect = 401
    client: Expect = 404
    member: Expect = 404
    foreign: Expect = 404
    staff: Expect = SKIP
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)
    # The identity-independent routes (no session): tried once per identity group.
    public: bool = False
    # Firm B's admin also tries firm A's object from its own matter (ref -> own),
    # with ``cross_body`` (default: ``body``) naming firm A's ids; the answer
    # must be ``cross_status`` ``cross_code`` (an id of another firm is
    # answered as one that does not exist).
    cross: bool = False
    cross_body: Any = None
    cross_status: int = 404
    cross_code: str = "not_found"

    def expect(self, group: str) -> Expect:
        expected: Expect = getattr(self, group)
        return expected


def _fill(value: Any, w: World, *, own_ref: str | None = None) -> Any:
    """Replace the placeholders of a spec's body/query with the world's ids."""
    if isinstance(value, str):
        if value == "@C1":
            return w.c1
        if value == "@staff_a":
            return w.staff_id
        if value.startswith("@") and value[1:] in w.strings:
            return w.strings[value[1:]]
        return value
    if isinstance(value, list):
        return [_fill(v, w, own_ref=own_ref) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, w, own_ref=own_ref) for k, v in value.items()}
    return value


_JSON = {"Content-Type": "application/json"}
_KDF = "@kdf"
_SECRET = "@secret"
_JUNK_LINK = "@junk"

# (method, path) -> spec. Paths are the app's route paths; placeholders in
# bodies ("@C1", "@kdf", ...) are filled from the world. Every discovered
# /api/v1 route must be here and every entry must be a route.
SPECS: dict[tuple[str, str], Spec] = {
    # --- matters and their stream: {ref} = M1
    ("GET", "/api/v1/matters"): Spec(client=OK, member=OK, foreign=OK),
    ("POST", "/api/v1/matters"): Spec(
        foreign=SKIP,
        staff=403,
        body={"title": "Staff should not"},
        # Firm B's admin makes a matter of its own, firm A's staff member responsible.
        cross=True,
        cross_body={"title": "Poached", "responsible_staff_id": "@staff_a"},
        cross_status=400,
        cross_code="bad_request",
    ),
    ("GET", "/api/v1/matters/{ref}"): Spec(member=OK),
    # A client member may see M1, so a staff action on it is a role refusal (as for
    # POST .../invites: "staff actions need portal.manage ..., else 403 forbidden").
    ("PATCH", "/api/v1/matters/{ref}"): Spec(
        staff=403,
        body={"matter_type": "x"},
        cross=True,
        cross_body={"responsible_staff_id": "@staff_a"},
        cross_status=400,
        cross_code="bad_request",
    ),
    ("GET", "/api/v1/matters/{ref}/events"): Spec(member=OK, query={"after": "0"}),
    ("POST", "/api/v1/matters/{ref}/events"): Spec(
        member=OK,
        body={
            "kind": "message",
            "audience": "portal",
            "payload": {"thread": "matrix"},
            "client_id": "matrix",
        },
    ),
    # --- threads: {thread} = C1's welcome thread (C2's applicants are hidden: 404)
    ("GET", "/api/v1/matters/{ref}/threads"): Spec(member=OK),
    # --- files: {file} = a file attached to a message to C1 only (C2 may not see it)
    ("POST", "/api/v1/matters/{ref}/files"): Spec(member=SKIP),
    ("GET", "/api/v1/matters/{ref}/files/{file}"): Spec(),
    ("GET", "/api/v1/matters/{ref}/threads/{thread}/items"): Spec(),
    # Threads, reading: {thread} = C1's welcome thread, which C2 (applicants hidden) may not see.
    ("GET", "/api/v1/matters/{ref}/unread"): Spec(member=OK),
    ("POST", "/api/v1/matters/{ref}/threads/{thread}/read"): Spec(body={"upto": 1}),
    ("GET", "/api/v1/matters/{ref}/threads/{thread}/receipts"): Spec(),
    ("GET", "/api/v1/matters/{ref}/threads/{thread}/first-unread"): Spec(),
    ("PUT", "/api/v1/matters/{ref}/applicants/{contact_id}"): Spec(cross=True),
    ("DELETE", "/api/v1/matters/{ref}/applicants/{contact_id}"): Spec(cross=True),
    # --- the directory: {id} = C1
    ("GET", "/api/v1/contacts"): Spec(foreign=OK, query={"q": "zelda"}),
    ("POST", "/api/v1/contacts"): Spec(foreign=SKIP, body={"name": "Nobody New"}),
    ("GET", "/api/v1/contacts/{id}"): Spec(),
    ("PATCH", "/api/v1/contacts/{id}"): Spec(body={"name": "Renamed By Intruder"}),
    # --- templates: {id} = firm A's canary template
    ("GET", "/api/v1/templates"): Spec(foreign=OK),
    ("POST", "/api/v1/templates"): Spec(
        foreign=SKIP, staff=403, body={"name": "intruder", "subject": "s", "body": "b"}
    ),
    ("PATCH", "/api/v1/templates/{id}"): Spec(staff=403, body={"subject": "changed"}),
    # --- invites: {ref} = M1, {id} = C1's invite
    ("GET", "/api/v1/matters/{ref}/invites/draft"): Spec(query={"contact_id": "@C1"}, cross=True),
    ("POST", "/api/v1/matters/{ref}/invites"): Spec(
        staff=403,
        body={"invites": [{"contact_id": "@C1", "method": "email", "see_applicants": True}]},
        cross=True,
    ),
    ("GET", "/api/v1/matters/{ref}/invites"): Spec(),
    ("POST", "/api/v1/invites/{id}/resend"): Spec(staff=403, body={}),
    ("POST", "/api/v1/invites/{id}/remove"): Spec(staff=403, body={}),
    ("POST", "/api/v1/invites/{id}/regenerate"): Spec(staff=403, body={}),
    ("POST", "/api/v1/invites/open"): Spec(public=True, anon=400, body={"token": _JUNK_LINK}),
    ("POST", "/api/v1/invites/accept"): Spec(
        public=True,
        anon=400,
        body={"token": _JUNK_LINK, "kdf": _KDF, "login_secret": _SECRET},
    ),
    # --- firm administration (staff actions do not exist for clients: 404)
    ("GET", "/api/v1/firm"): Spec(foreign=OK, staff=403),
    ("PATCH", "/api/v1/firm"): Spec(foreign=OK, staff=403, body={"require_totp": False}),
    ("GET", "/api/v1/outbox"): Spec(foreign=OK, staff=403),
    ("GET", "/api/v1/audit"): Spec(foreign=OK, staff=403),
    ("GET", "/api/v1/audit/export"): Spec(foreign=OK, staff=403, query={"format": "json"}),
    ("GET", "/api/v1/staff"): Spec(foreign=OK, staff=403),
    ("POST", "/api/v1/staff"): Spec(
        foreign=SKIP,
        staff=403,
        body={"email": "intruder@example.test", "name": "Intruder", "role": "org_admin"},
    ),
    # {user_id} = firm A's plain staff member (its org admin, for the plain staff member)
    ("PATCH", "/api/v1/staff/{user_id}"): Spec(staff=403, body={"status": "disabled"}),
    ("POST", "/api/v1/staff/{user_id}/resend-setup"): Spec(staff=403, body={}),
    ("POST", "/api/v1/setup/open"): Spec(public=True, anon=400, body={"token": _JUNK_LINK}),
    ("POST", "/api/v1/setup/accept"): Spec(
        public=True,
        anon=400,
        body={"token": _JUNK_LINK, "kdf": _KDF, "login_secret": _SECRET},
    ),
    # --- the phase timeline (docs/threads.md): {id} = firm A's matter type, whose
    # phase M1 is on; a client member reads M1's steps, never a phase name
    ("GET", "/api/v1/firm/matter-types"): Spec(foreign=OK),
    ("POST", "/api/v1/firm/matter-types"): Spec(
        foreign=SKIP, staff=403, body={"name": "Intruder type"}
    ),
    ("PATCH", "/api/v1/firm/matter-types/{id}"): Spec(staff=403, body={"name": "Renamed"}),
    ("POST", "/api/v1/matters/{ref}/phase"): Spec(body={"phase": "@phase_id"}, cross=True),
    ("GET", "/api/v1/matters/{ref}/timeline"): Spec(member=OK),
    # --- the document checklist (docs/documents.md): {id} = firm A's document type
    # (a matter type's defaults: its matter type), {item} = M1's request to C1 only
    # (C2's applicants are hidden: it does not exist for C2); firm B's admin names
    # firm A's type or item from its own matter
    ("GET", "/api/v1/firm/document-types"): Spec(foreign=OK),
    ("POST", "/api/v1/firm/document-types"): Spec(
        foreign=SKIP, staff=403, body={"label": "Intruder type"}
    ),
    ("PATCH", "/api/v1/firm/document-types/{id}"): Spec(staff=403, body={"label": "Renamed"}),
    ("GET", "/api/v1/firm/matter-types/{id}/documents"): Spec(),
    ("PUT", "/api/v1/firm/matter-types/{id}/documents"): Spec(
        staff=403, body={"documents": [{"type": "@doc_type"}]}
    ),
    ("GET", "/api/v1/matters/{ref}/documents"): Spec(member=OK),
    ("POST", "/api/v1/matters/{ref}/documents"): Spec(
        body={"types": ["@doc_type"]}, cross=True, cross_status=400, cross_code="bad_request"
    ),
    ("POST", "/api/v1/matters/{ref}/documents/request"): Spec(
        body={"items": ["@doc_item"]}, cross=True
    ),
    ("POST", "/api/v1/matters/{ref}/documents/{item}/upload"): Spec(
        body={"files": ["@file_id"], "blob": "AAAA"}, cross=True
    ),
    ("POST", "/api/v1/matters/{ref}/documents/{item}/accept"): Spec(body={}, cross=True),
    ("POST", "/api/v1/matters/{ref}/documents/{item}/reject"): Spec(
        body={"reason": "AAAA"}, cross=True
    ),
    ("POST", "/api/v1/matters/{ref}/documents/{item}/share"): Spec(
        body={"files": ["@file_id"], "blob": "AAAA"}, cross=True
    ),
    # --- the key directory (docs/keys.md): staff actions do not exist for clients (404);
    # firm-wide reads answer the caller's own firm; {ref} = M1
    # --- tags and the activity feed (docs/threads.md): staff only; {tag} = firm A's tag,
    # {item} = a message of M1; firm B's admin reads its own firm's (empty) lists
    ("GET", "/api/v1/firm/tags"): Spec(foreign=OK),
    ("POST", "/api/v1/firm/tags"): Spec(foreign=SKIP, body={"tag": MATRIX_TAG, "name_blob": "AA"}),
    ("POST", "/api/v1/firm/tags/{tag}/archive"): Spec(body={}),
    ("POST", "/api/v1/matters/{ref}/items/{item}/tags"): Spec(body={"tag": MATRIX_TAG}),
    ("GET", "/api/v1/feed"): Spec(foreign=OK),
    # --- the review inbox (docs/reviews.md): staff only, not even a count for a client;
    # {id} = a review of M1 (C1's message); firm B's admin reads its own (empty) inbox
    ("GET", "/api/v1/reviews"): Spec(foreign=OK),
    ("GET", "/api/v1/reviews/count"): Spec(foreign=OK),
    ("GET", "/api/v1/reviews/reviewers"): Spec(foreign=OK),
    ("POST", "/api/v1/reviews/{id}/reviewed"): Spec(body={}),
    ("POST", "/api/v1/reviews/{id}/reassign"): Spec(body={"reviewer": "@staff_a"}),
    ("PATCH", "/api/v1/reviews/{id}"): Spec(body={"review_on": "@today"}),
    ("GET", "/api/v1/keys/firm"): Spec(client=OK, member=OK, foreign=OK),
    ("PUT", "/api/v1/keys/root"): Spec(foreign=SKIP, staff=403, body={"frk": "AAAA"}),
    ("GET", "/api/v1/keys/pending"): Spec(foreign=OK, staff=403),
    ("POST", "/api/v1/keys/certs"): Spec(foreign=SKIP, body={"certs": ["AAAA"]}),
    ("PUT", "/api/v1/keys/revocations"): Spec(foreign=SKIP, staff=403, body={"list": "AAAA"}),
    ("POST", "/api/v1/keys/client-revocations"): Spec(foreign=SKIP, body={"revocations": ["AAAA"]}),
    ("POST", "/api/v1/keys/escrow"): Spec(foreign=SKIP, staff=403, body={"record": "AAAA"}),
    ("GET", "/api/v1/keys/matters/{ref}"): Spec(member=OK),
    # A new epoch or more wraps change who reads M1: portal.manage, as an invite round
    # (checked before the body is read). A head refresh of the current epoch changes no
    # membership: open to any staff member of the firm (docs/keys.md).
    ("POST", "/api/v1/keys/matters/{ref}/epochs"): Spec(
        staff=403, body={"manifest": "AAAA", "head": "AAAA"}
    ),
    ("PUT", "/api/v1/keys/matters/{ref}/head"): Spec(body={"head": "AAAA"}),
    ("POST", "/api/v1/keys/matters/{ref}/wraps"): Spec(staff=403, body={"wraps": ["AAAA"]}),
    ("GET", "/api/v1/keys/me"): Spec(client=OK, member=OK, foreign=OK),
    ("PUT", "/api/v1/keys/me"): Spec(client=SKIP, member=SKIP, foreign=SKIP, body={}),
    # --- the caller's own session and account: no id; without a session 401
    ("GET", "/api/v1/me"): Spec(client=OK, member=OK, foreign=OK),
    ("POST", "/api/v1/me/password"): Spec(
        client=SKIP,
        member=SKIP,
        foreign=SKIP,
        body={"current_login_secret": _SECRET, "kdf": _KDF, "login_secret": _SECRET},
    ),
    ("POST", "/api/v1/me/totp"): Spec(client=SKIP, member=SKIP, foreign=SKIP, body={}),
    ("DELETE", "/api/v1/me/totp"): Spec(
        client=SKIP, member=SKIP, foreign=SKIP, body={"code": "123456"}
    ),
    ("POST", "/api/v1/me/totp/confirm"): Spec(
        client=SKIP, member=SKIP, foreign=SKIP, body={"code": "123456"}
    ),
    ("DELETE", "/api/v1/session"): Spec(client=SKIP, member=SKIP, foreign=SKIP),
    ("DELETE", "/api/v1/sessions"): Spec(client=SKIP, member=SKIP, foreign=SKIP),
    # Session exchange with a token that names nobody: 401 whoever asks.
    ("POST", "/api/v1/session"): Spec(public=True, anon=401, body={"token": _JUNK_LINK}),
    # Sign-in as C1 with a wrong secret, prelogin of C1's email: the same answer
    # as for nobody, and never C1's data.
    ("POST", "/api/v1/prelogin"): Spec(
        public=True, anon=OK, body={"firm": "@slug", "email": "@c1_email"}
    ),
    ("POST", "/api/v1/signin"): Spec(
        public=True,
        anon=401,
        body={"firm": "@slug", "email": "@c1_email", "login_secret": _SECRET},
    ),
}

# The code of a refusal, where it is not the status's usual one.
SPECIAL_CODES: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/signin"): "invalid_credentials",
}


# --- the world -----------------------------------------------------------------------------


@dataclass
class Identity:
    name: str
    group: str
    headers: dict[str, str]
    ws_headers: dict[str, str]
    forbidden: set[str]  # canaries this identity may never see


@dataclass
class World:
    kit_a: FirmKit
    kit_b: FirmKit
    m1: str
    m2: str
    mb: str  # firm B's own matter
    c1: int
    c2: int
    c1_invite: int
    template_id: int
    staff_id: int  # firm A's plain staff member
    admin_id: int  # firm A's org admin
    canaries: dict[str, str]  # label -> unique string
    strings: dict[str, Any]  # body placeholders
    identities: list[Identity] = field(default_factory=list)


def _canaries() -> dict[str, str]:
    tag = secrets.token_hex(5)
    digits = "".join(secrets.choice("0123456789") for _ in range(8))
    return {
        "c1_name": f"Zelda Cnry{tag} Applicant",
        "c1_email": f"zelda.cnry{tag}@client.test",
        "c1_phone": f"+6149{digits}",
        "m1_title": f"Estate of Cnry{tag} Title",
        "welcome_subject": f"Private welcome Cnry{tag} subject",
        "welcome_text": f"Dear Zelda, your secret Cnry{tag} welcome",
        "note": f"Staff note Cnry{tag}: settle quietly",
        "template_subject": f"Template Cnry{tag} subject line",
        "staff_email": f"paralegal.cnry{tag}@firm-a.test",
        "staff_name": f"Pat Cnry{tag} Paralegal",
        "m2_title": f"Second matter Cnry{tag}",
        "c3_name": f"Cora Cnry{tag} Three",
        "firm_a": f"Firm A Cnry{tag} Lawyers",
        "phase_name": f"Phase Cnry{tag} chasing the embassy",
        "file_body": f"Attached file Cnry{tag} bytes",
        "doc_label": f"Document Cnry{tag} label",
        "doc_description": f"Bring Cnry{tag} description",
    }


# Canaries of C1 and M1's private items: no client but C1 may see them.
_C1_PRIVATE = {
    "c1_name",
    "c1_email",
    "c1_phone",
    "welcome_subject",
    "welcome_text",
    "note",
    "template_subject",
    "staff_email",
    "staff_name",
    # Internal phase names are staff-only: no client, not even C1, sees them.
    "phase_name",
    # The bytes of a file attached to a message to C1 (docs/files.md).
    "file_body",
    # A document requested of C1 only (docs/documents.md): its type's label and
    # description reach C1 and staff only.
    "doc_label",
    "doc_description",
}
_FIRM_A = set(_canaries())  # everything of firm A


def _checked(response: httpx.Response, expected: int) -> Any:
    assert response.status_code == expected, response.text
    return response.json()


async def _accept(
    http: httpx.AsyncClient, invite_id: int, kit: FirmKit, secret: str, *, kdf: bool = True
) -> str:
    """Accept ``invite_id`` as its contact would; returns the session cookie.

    ``kdf`` False: the contact already has a password (one per contact), and
    ``secret`` must be it."""
    got = await received(kit.db, invite_id)
    assert got.link is not None
    response = await http.post("/api/v1/invites/accept", json=acceptance(got.link, secret, kdf=kdf))
    _checked(response, 201)
    cookie = response.cookies.get("rtp_session")
    http.cookies.clear()
    assert cookie
    return cookie


async def _token(kit: FirmKit, kind: str, principal_id: int) -> str:
    async with kit.db.write() as session:
        return await issue_token(
            session,
            kit.settings.secret_key,
            kind,
            principal_id,
            label="matrix",
            ttl=timedelta(hours=1),
        )


async def _cookie_of(http: httpx.AsyncClient, token: str) -> dict[str, str]:
    """A browser session (cookie + CSRF token) exchanged from a bearer token."""
    response = await http.post("/api/v1/session", headers={"Authorization": f"Bearer {token}"})
    body = _checked(response, 201)
    cookie = response.cookies.get("rtp_session")
    http.cookies.clear()
    assert cookie
    return {"Cookie": f"rtp_session={cookie}", "X-CSRF-Token": body["csrf_token"]}


async def build_world(http: httpx.AsyncClient, make_firm: MakeFirm) -> World:
    canary = _canaries()
    kit_a = await make_firm(name=canary["firm_a"])
    kit_b = await make_firm(name="Firm B Partners")
    admin = kit_a.auth("admin")

    async def post(path: str, body: Any, status: int = 201) -> Any:
        return _checked(await http.post(path, json=body, headers=admin), status)

    # M1 (nobody's responsibility: the plain staff member may not manage it) and M2.
    m1 = (await post("/api/v1/matters", {"title": canary["m1_title"]}))["matter"]["ref"]
    m2 = (await post("/api/v1/matters", {"title": canary["m2_title"]}))["matter"]["ref"]
    c1 = (
        await post(
            "/api/v1/contacts",
            {
                "name": canary["c1_name"],
                "emails": [canary["c1_email"]],
                "phones": [{"number": canary["c1_phone"], "personal_mobile": True}],
            },
        )
    )["contact"]["id"]
    tag = secrets.token_hex(4)
    others = {}
    for key, name in (("c2", "Dana Two"), ("r", "Rex Removed"), ("c3", canary["c3_name"])):
        body = {"name": name, "emails": [f"{key}.{tag}@client.test"]}
        others[key] = (await post("/api/v1/contacts", body))["contact"]["id"]
    template = await post(
        "/api/v1/templates",
        {"name": f"Private {tag}", "subject": canary["template_subject"], "body": "Hello"},
    )
    await post(
        "/api/v1/staff",
        {"email": canary["staff_email"], "name": canary["staff_name"], "role": "matter_admin"},
    )

    async def invite(ref: str, contact: int, see: bool, **extra: str) -> int:
        body: dict[str, Any] = {
            "invites": [{"contact_id": contact, "method": "email", "see_applicants": see}],
            **extra,
        }
        (invite_id,) = (await post(f"/api/v1/matters/{ref}/invites", body))["invites"]
        assert isinstance(invite_id, int)
        return invite_id

    c1_invite = await invite(
        m1,
        c1,
        True,
        subject=canary["welcome_subject"],
        body=canary["welcome_text"] + " {portal_link}",
    )
    c2_invite = await invite(m1, others["c2"], False)
    r_m1 = await invite(m1, others["r"], True)
    r_m2 = await invite(m2, others["r"], True)
    c3_invite = await invite(m2, others["c3"], True)
    secrets_of = {key: login_secret() for key in ("c1", "c2", "r", "c3")}
    await _accept(http, c1_invite, kit_a, secrets_of["c1"])
    c2_cookie = await _accept(http, c2_invite, kit_a, secrets_of["c2"])
    await _accept(http, r_m1, kit_a, secrets_of["r"])
    r_cookie = await _accept(http, r_m2, kit_a, secrets_of["r"], kdf=False)
    c3_cookie = await _accept(http, c3_invite, kit_a, secrets_of["c3"])
    # The internal note, and R's removal (R keeps M2, so stays signed in).
    note = {
        "kind": "note",
        "audience": "staff",
        "client_id": "note",
        "payload": {"thread": "internal", "text": canary["note"]},
    }
    await post(f"/api/v1/matters/{m1}/events", note)
    r_token = await _token(kit_a, "contact", others["r"])
    await post(f"/api/v1/invites/{r_m1}/remove", {}, status=200)
    # A matter type whose second phase (the canary) maps to the first step; M1 is on it.
    matter_type = await post(
        "/api/v1/firm/matter-types",
        {
            "name": f"Visa {tag}",
            "steps": [{"name": "Preparing", "description": "We gather your papers"}],
            "phases": [{"name": "Intake", "step": 0}, {"name": canary["phase_name"], "step": 0}],
        },
    )
    type_id = matter_type["matter_type"]["id"]
    phase_id = matter_type["matter_type"]["phases"][1]["id"]
    await post(f"/api/v1/matters/{m1}/phase", {"phase": phase_id}, status=200)

    # A file attached to a message addressed to C1 only (C2 does not see applicants).
    blob = b"RTA1\x01" + bytes(16) + canary["file_body"].encode() * 4
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode()
    upload = await http.post(
        f"/api/v1/matters/{m1}/files",
        content=blob,
        headers={
            **admin,
            "Content-Type": "application/octet-stream",
            "Content-Digest": f"sha-256=:{digest}:",
        },
    )
    file_id = _checked(upload, 201)["file"]["id"]
    await post(
        f"/api/v1/matters/{m1}/events",
        {
            "kind": "message",
            "client_id": "filed",
            "payload": {"thread": "files-c1", "to": [c1], "files": [file_id]},
        },
    )

    # A review of M1: C1's message waiting for firm A's staff (its id the routes' {id}).
    async with kit_a.db.write() as session:
        matter_m1 = (
            await session.execute(select(Matter).where(Matter.reference == m1))
        ).scalar_one()
        await enqueue(session, matter_m1, "message", f"c{c1}.matrix-review", c1, thread="t")
    async with kit_a.db.read() as session:
        review_id = (
            await session.execute(select(Review.id).where(Review.matter_id == matter_m1.id))
        ).scalar_one()
    # A document of firm A's (canary label) requested of C1 only on M1.
    doc_type = (
        await post(
            "/api/v1/firm/document-types",
            {"label": canary["doc_label"], "description": canary["doc_description"]},
        )
    )["document_type"]["id"]
    (doc_item,) = (await post(f"/api/v1/matters/{m1}/documents", {"types": [doc_type]}))[
        "documents"
    ]
    await post(
        f"/api/v1/matters/{m1}/documents/request",
        {"items": [doc_item["id"]], "to": [c1]},
        status=200,
    )

    mb = kit_b.ref
    async with kit_a.db.read() as session:
        firm = await session.get(Firm, kit_a.firm_id)
        assert firm is not None
        slug = firm.slug
    world = World(
        kit_a=kit_a,
        kit_b=kit_b,
        m1=m1,
        m2=m2,
        mb=mb,
        c1=c1,
        c2=others["c2"],
        c1_invite=c1_invite,
        template_id=template["template"]["id"],
        staff_id=kit_a.staff.id,
        admin_id=kit_a.admin.id,
        canaries=canary,
        strings={
            "kdf": kdf_body(),
            "secret": login_secret(),
            "junk": secrets.token_urlsafe(32),
            "slug": slug,
            "c1_email": canary["c1_email"],
            "type_id": type_id,
            "phase_id": phase_id,
            "file_id": file_id,
            "review_id": review_id,
            "today": today_in(None).isoformat(),
            "doc_type": doc_type,
            "doc_item": doc_item["id"],
        },
    )
    async with kit_a.db.write() as session:  # a tag of firm A (its name: opaque bytes)
        session.add(Tag(firm_id=kit_a.firm_id, tag=MATRIX_TAG, name_blob=b"x", created_by="s1"))
    # Firm A's make_firm staff emails are firm A's too.
    async with kit_a.db.read() as session:
        for user_id in (kit_a.admin.id, kit_a.staff.id):
            user = await session.get(StaffUser, user_id)
            assert user is not None
            canary[f"staff_{user_id}"] = user.email

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    client_forbidden = set(canary) - {"firm_a", "m2_title", "c3_name"}
    staff_ids = {k for k in canary if k.startswith("staff_")}
    member_forbidden = (_C1_PRIVATE | staff_ids) & set(canary)
    c3_token = await _token(kit_a, "contact", others["c3"])
    c2_token = await _token(kit_a, "contact", others["c2"])
    csrf = {}
    for key, cookie in (("c2", c2_cookie), ("r", r_cookie), ("c3", c3_cookie)):
        me = await http.get("/api/v1/me", headers={"Cookie": f"rtp_session={cookie}"})
        csrf[key] = {
            "Cookie": f"rtp_session={cookie}",
            "X-CSRF-Token": _checked(me, 200)["csrf_token"],
        }
    foreign_cookie = await _cookie_of(http, kit_b.tokens["admin"])
    staff_cookie = await _cookie_of(http, kit_a.tokens["staff"])

    def ident(name: str, group: str, headers: dict[str, str], forbidden: set[str]) -> Identity:
        ws = {k: v for k, v in headers.items() if k != "X-CSRF-Token"}
        return Identity(name, group, headers, ws, {canary[k] for k in forbidden})

    everything = set(canary)
    world.identities = [
        ident("no session", ANON, {}, everything),
        ident("C3 bearer (client of M2)", CLIENT, bearer(c3_token), client_forbidden),
        ident("C3 cookie (client of M2)", CLIENT, csrf["c3"], client_forbidden),
        ident("R bearer (removed from M1)", CLIENT, bearer(r_token), client_forbidden),
        ident("R cookie (removed from M1)", CLIENT, csrf["r"], client_forbidden),
        ident("C2 bearer (applicants off)", MEMBER, bearer(c2_token), member_forbidden),
        ident("C2 cookie (applicants off)", MEMBER, csrf["c2"], member_forbidden),
        ident("firm B admin bearer", FOREIGN, kit_b.auth("admin"), everything),
        ident("firm B admin cookie", FOREIGN, foreign_cookie, everything),
        ident("plain staff bearer", STAFF, kit_a.auth("staff"), everything),
        ident("plain staff cookie", STAFF, staff_cookie, everything),
    ]
    return world


async def planted(http: httpx.AsyncClient, w: World) -> None:
    """The canaries are where the matrix probes: firm A's admin, and C1 itself,
    see each of them (so a leak of one would be caught)."""
    admin = w.kit_a.auth("admin")

    async def text(path: str, headers: dict[str, str]) -> str:
        response = await http.get(path, headers=headers)
        assert response.status_code == 200, response.text
        return response.text

    c = w.canaries
    seen = await text(f"/api/v1/matters/{w.m1}/events", admin)
    for key in ("welcome_subject", "welcome_text", "note"):
        assert c[key] in seen, key
    actions = [e["payload"]["action"] for e in json.loads(seen)["events"] if e["kind"] == "access"]
    assert {"invited", "accepted", "removed"} <= set(actions), actions
    assert c["c1_name"] in await text(f"/api/v1/matters/{w.m1}", admin)
    contact = await text(f"/api/v1/contacts/{w.c1}", admin)
    assert c["c1_email"] in contact and c["c1_phone"] in contact
    assert c["template_subject"] in await text("/api/v1/templates", admin)
    assert c["phase_name"] in await text(f"/api/v1/matters/{w.m1}/timeline", admin)
    assert c["phase_name"] in await text(f"/api/v1/matters/{w.m1}/events", admin)
    assert c["staff_email"] in await text("/api/v1/staff", admin)
    # C1 sees the applicants (its invite allows it) and its own welcome.
    c1 = {"Authorization": f"Bearer {await _token(w.kit_a, 'contact', w.c1)}"}
    assert c["c1_name"] in await text(f"/api/v1/matters/{w.m1}", c1)
    assert c["welcome_text"] in await text(f"/api/v1/matters/{w.m1}/events", c1)
    for who in (admin, c1):
        documents = await text(f"/api/v1/matters/{w.m1}/documents", who)
        assert c["doc_label"] in documents and c["doc_description"] in documents
    for who in (admin, c1):
        assert c["file_body"] in await text(
            f"/api/v1/matters/{w.m1}/files/{w.strings['file_id']}", who
        )


# --- the HTTP matrix -----------------------------------------------------------------------


_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def discovered(settings: Settings) -> set[tuple[str, str]]:
    """Every (method, path) of the app under /api/v1."""
    found = set()
    for route in create_app(settings).routes:
        if isinstance(route, Route) and route.path.startswith("/api/v1"):
            for method in route.methods or ():
                if method != "HEAD":
                    # "{id:int}" -> "{id}": the table names parameters only.
                    found.add((method, _CONVERTER.sub(r"{\1}", route.path)))
    return found


def _path(path: str, w: World, *, own: bool = False) -> str:
    """The route's path with firm A's victims (or, ``own``, firm B's matter)."""
    invite_route = path.startswith("/api/v1/invites/")
    template_route = path.startswith("/api/v1/templates/")
    type_route = path.startswith("/api/v1/firm/matter-types/")
    review_route = path.startswith("/api/v1/reviews/")
    doc_type_route = path.startswith("/api/v1/firm/document-types/")
    values = {
        "ref": w.mb if own else w.m1,
        "contact_id": str(w.c1),
        "user_id": str(w.staff_id),
        "tag": MATRIX_TAG,
        "item": (
            str(w.strings["doc_item"]) if "/documents/{item}" in path else f"c{w.c1}.matrix-item"
        ),
        "thread": f"welcome-{w.c1_invite}",
        "file": str(w.strings["file_id"]),
        "id": str(
            w.c1_invite
            if invite_route
            else w.template_id
            if template_route
            else w.strings["type_id"]
            if type_route
            else w.strings["review_id"]
            if review_route
            else w.strings["doc_type"]
            if doc_type_route
            else w.c1
        ),
    }
    for name, value in values.items():
        path = path.replace(f"{{{name}}}", value)
    assert "{" not in path, f"no victim for a parameter of {path}"
    return path


@dataclass
class Tally:
    requests: int = 0
    routes: set[tuple[str, str]] = field(default_factory=set)
    frames: int = 0
    failures: list[str] = field(default_factory=list)


def _leaks(text: str, forbidden: set[str], sent: str) -> list[str]:
    """Canaries in ``text`` that the request itself did not carry."""
    return sorted(c for c in forbidden if c in text and c not in sent)


async def _try(
    http: httpx.AsyncClient,
    tally: Tally,
    who: Identity,
    method: str,
    route: str,
    url: str,
    spec: Spec,
    expected: int | str,
    w: World,
    user_id: str | None = None,
    *,
    cross: bool = False,
) -> None:
    body = _fill(spec.cross_body if cross and spec.cross_body is not None else spec.body, w)
    query = {k: str(_fill(v, w)) for k, v in spec.query.items()}
    if user_id is not None:
        url = url.replace(f"/staff/{w.staff_id}", f"/staff/{user_id}")
    response = await http.request(
        method,
        url,
        params=query,
        headers=who.headers if body is None else {**who.headers, **_JSON},
        content=None if body is None else json.dumps(body),
    )
    tally.requests += 1
    tally.routes.add((method, route))
    label = f"{method} {url} as {who.name}"
    sent = json.dumps(body) + json.dumps(query) + url
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    leaked = _leaks(response.text + headers, who.forbidden, sent)
    if leaked:
        tally.failures.append(f"{label}: LEAK {leaked} in {response.status_code} {response.text}")
    if expected == OK:
        if not 200 <= response.status_code < 300:
            tally.failures.append(f"{label}: expected success, got {response.text}")
        return
    assert isinstance(expected, int)
    code = SPECIAL_CODES.get((method, route), REFUSAL_CODES[expected])
    if cross:
        code = spec.cross_code
    got = response.json().get("error", {}).get("code") if response.content else None
    if response.status_code != expected or got != code:
        tally.failures.append(
            f"{label}: expected {expected} {code}, got {response.status_code} {response.text}"
        )


async def http_matrix(http: httpx.AsyncClient, w: World, tally: Tally) -> None:
    for (method, route), spec in sorted(SPECS.items()):
        for who in w.identities:
            if spec.public and who.name not in ("no session", "firm B admin bearer"):
                continue  # no session taken: the same for everyone (and sign-in counts tries)
            expected = spec.anon if spec.public else spec.expect(who.group)
            if expected is not SKIP:
                user_id = str(w.admin_id) if who.group == STAFF else None
                url = _path(route, w)
                await _try(http, tally, who, method, route, url, spec, expected, w, user_id)
            if spec.cross and who.group == FOREIGN:
                # Firm B's admin, from its own matter, names firm A's objects.
                own = _path(route, w, own=True)
                status = spec.cross_status
                await _try(http, tally, who, method, route, own, spec, status, w, cross=True)
    # C2 reads M1: allowed, and nothing of C1 (its name as an applicant, its welcome,
    # the staff note and the access events never reach C2).
    for c2 in (i for i in w.identities if i.group == MEMBER):
        matter = _checked(await http.get(f"/api/v1/matters/{w.m1}", headers=c2.headers), 200)
        if "applicants" in matter["matter"]:
            tally.failures.append(f"GET /api/v1/matters/{w.m1} as {c2.name}: LEAK {matter}")
        url = f"/api/v1/matters/{w.m1}/events"
        history = _checked(await http.get(url, headers=c2.headers), 200)
        for event in history["events"]:
            foreign_welcome = event["kind"] == "welcome" and event["payload"]["to"] != [w.c2]
            if event["kind"] not in ("message", "welcome", "step") or foreign_welcome:
                tally.failures.append(f"GET {url} as {c2.name}: LEAK {event}")
        tally.requests += 2


# --- the websocket matrix ------------------------------------------------------------------


async def _frames(ws: ClientConnection, done: Callable[[dict[str, Any]], bool]) -> list[Any]:
    """Frames until ``done`` says the last one was the awaited answer."""
    seen: list[dict[str, Any]] = []

    async def read() -> None:
        while True:
            frame = json.loads(await ws.recv())
            seen.append(frame)
            if done(frame):
                return

    await asyncio.wait_for(read(), TIMEOUT)
    return seen


@contextlib.asynccontextmanager
async def _ws(server: RunningServer, who: Identity) -> AsyncIterator[ClientConnection]:
    async with connect(
        server.ws_url, additional_headers=who.ws_headers, proxy=None, open_timeout=TIMEOUT
    ) as ws:
        # Read by the server after its own hello; a refused identity is closed first.
        with contextlib.suppress(ConnectionClosed):
            await ws.send(HELLO)
        yield ws


async def ws_matrix(server: RunningServer, http: httpx.AsyncClient, w: World, tally: Tally) -> None:
    send: dict[str, Any] = {
        "type": "send",
        "matter": w.m1,
        "kind": "message",
        "audience": "portal",
        "payload": {"thread": "ws-matrix"},
        "blob": None,
    }
    for who in w.identities:
        if who.group == STAFF:
            continue  # a staff member of firm A may subscribe and send to M1
        label = f"websocket as {who.name}"
        if who.group == ANON:
            async with _ws(server, who) as ws:
                seen: list[Any] = []
                with contextlib.suppress(ConnectionClosed):
                    seen.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
                assert ws.close_code == CLOSE_UNAUTHENTICATED and seen == [], (label, seen)
            tally.frames += 1  # the upgrade: closed before any frame is read
            continue
        received: list[Any] = []
        async with _ws(server, who) as ws:
            received += await _frames(ws, lambda f: f["type"] == "hello")
            member = who.group == MEMBER
            # subscribe to M1
            await ws.send(
                json.dumps(
                    {"type": "subscribe", "id": "s1", "subs": [{"matter": w.m1, "after": 0}]}
                )
            )
            if member:
                history = _checked(
                    await http.get(f"/api/v1/matters/{w.m1}/events", headers=who.headers), 200
                )
                # The newest event (pages are in log order): a seq, or a client's token.
                newest = history["events"][-1]
                last = newest.get("seq", newest.get("cursor"))

                def backlog_read(f: dict[str, Any], last: int | str = last) -> bool:
                    return f.get("type") == "event" and last in (f.get("seq"), f.get("cursor"))

                got = await _frames(ws, backlog_read)
                assert got[0]["type"] == "subscribed", (label, got)
                assert {f["kind"] for f in got[1:]} <= {"message", "welcome", "step"}, (label, got)
            else:
                got = await _frames(ws, lambda f: f.get("id") == "s1")
                assert [(f["type"], f.get("code"), f.get("matter")) for f in got] == [
                    ("error", "not_found", w.m1)
                ], (label, got)
            received += got
            # send to M1
            await ws.send(json.dumps({**send, "id": f"x-{secrets.token_hex(4)}"}))
            got = await _frames(ws, lambda f: f.get("type") in ("ack", "error"))
            if member:
                assert got[-1]["type"] == "ack", (label, got)
            else:
                assert [(f["type"], f.get("code")) for f in got] == [("error", "not_found")], (
                    label,
                    got,
                )
            received += got
            # unsubscribe from M1: accepted silently, whoever asks
            await ws.send(json.dumps({"type": "unsubscribe", "id": "u1", "matters": [w.m1]}))
            got = await _frames(ws, lambda f: f.get("id") == "u1")
            assert got[-1]["type"] == "unsubscribed", (label, got)
            received += got
        tally.frames += 3
        # A client member's message queued a review of M1: its reviewer's count frame
        # (staff only) never reaches a client (the timing-tight check: test_reviews_live).
        reviews = [f for f in received if f.get("type") == "reviews"]
        if reviews:
            tally.failures.append(f"{label}: LEAK a review count frame {reviews}")
        leaked = _leaks(json.dumps(received), who.forbidden, "")
        if leaked:
            tally.failures.append(f"{label}: LEAK {leaked} in frames {received}")


# --- the test ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
async def _fresh_address_limits(settings: Settings) -> AsyncIterator[None]:
    await _reset_address_counts(settings)
    yield
    await _reset_address_counts(settings)


def test_every_api_route_has_a_spec(settings: Settings) -> None:
    routes = discovered(settings)
    assert routes - set(SPECS) == set(), "add these routes to SPECS"
    assert set(SPECS) - routes == set(), "these SPECS entries are no route"


async def test_access_matrix(settings: Settings, make_firm: MakeFirm) -> None:
    routes = discovered(settings)
    assert routes == set(SPECS), routes ^ set(SPECS)
    async with workers(settings, 1) as (server,):
        async with httpx.AsyncClient(base_url=server.base_url, timeout=TIMEOUT) as http:
            world = await build_world(http, make_firm)
            await planted(http, world)
            tally = Tally()
            await http_matrix(http, world, tally)
            await ws_matrix(server, http, world, tally)
    n = tally.requests + tally.frames
    print(
        f"\naccess matrix: {n} requests over {len(tally.routes)} routes and 3 frames"
        f" x {len(world.identities)} identities"
        f" ({tally.requests} HTTP requests, {tally.frames} websocket frames)"
    )
    assert tally.failures == [], "\n".join(tally.failures)
    assert n >= MATRIX_FLOOR, n

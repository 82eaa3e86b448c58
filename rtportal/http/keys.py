"""HTTP: the key directory, ``/api/v1/keys/...`` (docs/keys.md "HTTP API"; docs/api.md "Keys").

Records travel as unpadded base64url. Reads take a read transaction; each
change runs in one ``Unit`` with its ``keys`` events (published after the
commit). Staff actions are ``not_found`` for clients and bots; another
firm's or matter's anything is ``not_found``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal import base64url
from rtportal.access import accounts, membership, passwords, roles
from rtportal.access.credentials import credential_of
from rtportal.errors import BadRequest, InvalidCredentials, NotFound
from rtportal.events.unit import Unit
from rtportal.http.auth import secret_field
from rtportal.http.context import db_of, ok, principal_of, runtime_of, settings_of
from rtportal.http.directory import body_of, staff_only
from rtportal.http.errors import json_endpoint
from rtportal.keys import epochs, firmkeys, reads
from rtportal.keys.records import Limits, raw, raw_list
from rtportal.principal import Principal

__all__ = ["REAUTH_LIMIT", "routes"]

_SINCE_RE = re.compile(r"[0-9]{1,9}")


def _b64_len(n: int) -> int:
    return math.ceil(n / 3) * 4 + 8


# Bodies: the largest records they may hold, in base64url, with room for JSON.
_SMALL = 16 * 1024
_CERTS = Limits.CERTS_PER_REQUEST * _b64_len(Limits.CERT) + 4096
_WRAPS = Limits.WRAPS_PER_REQUEST * _b64_len(Limits.WRAP) + 4096
_EPOCH = _b64_len(Limits.MANIFEST) + _b64_len(Limits.HEAD) + _WRAPS + _CERTS
_LIST = _b64_len(Limits.REVOCATION_LIST) + 1024
# Wrong login secrets on PUT /keys/me per account in REAUTH_WINDOW seconds
# (a success clears the count).
REAUTH_LIMIT = 10
REAUTH_WINDOW = 15 * 60


def _unit(request: Request) -> Unit:
    return Unit(db_of(request), request.app.state.hub.publish, settings_of(request))


def _fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")


def _wraps(body: dict[str, Any]) -> list[bytes]:
    return raw_list(body.get("wraps"), Limits.WRAP, "wraps", Limits.WRAPS_PER_REQUEST)


def _certs(body: dict[str, Any]) -> list[bytes]:
    return raw_list(body.get("certs"), Limits.CERT, "certs", Limits.CERTS_PER_REQUEST)


# --- the firm ---------------------------------------------------------------------------


@json_endpoint
async def get_firm(request: Request) -> Response:
    principal = await principal_of(request)
    async with db_of(request).read() as session:
        return ok(await reads.firm_body(session, principal))


@json_endpoint
async def put_root(request: Request) -> Response:
    principal = await principal_of(request)
    roles.require(principal, "keys.manage")
    body = await body_of(request, _SMALL)
    _fields(body, {"frk"})
    data = raw(body.get("frk"), Limits.ROOT, "frk")
    async with _unit(request) as unit:
        public = await firmkeys.set_root(unit, principal, data)
    return ok(
        {"frk": base64url.encode(public.record()), "fingerprint": public.fingerprint_text},
        status=201,
    )


@json_endpoint
async def get_pending(request: Request) -> Response:
    principal = await principal_of(request)
    roles.require(principal, "keys.manage")
    async with db_of(request).read() as session:
        return ok({"pending": await reads.pending_body(session, principal)})


@json_endpoint
async def post_certs(request: Request) -> Response:
    principal = await principal_of(request)
    staff_only(principal)
    body = await body_of(request, _CERTS + _WRAPS)
    _fields(body, {"certs", "wraps"})
    certs, wraps = _certs(body), _wraps(body)
    if not certs:
        raise BadRequest("certs: at least one certificate", field="certs")
    async with _unit(request) as unit:
        await firmkeys.add_certs(unit, principal, certs, wraps)
    return ok({"certs": len(certs), "wraps": len(wraps)}, status=201)


@json_endpoint
async def put_revocations(request: Request) -> Response:
    principal = await principal_of(request)
    roles.require(principal, "keys.manage")
    body = await body_of(request, _LIST)
    _fields(body, {"list"})
    data = raw(body.get("list"), Limits.REVOCATION_LIST, "list")
    async with _unit(request) as unit:
        version = await firmkeys.put_revocation_list(unit, principal, data)
    return ok({"version": version})


@json_endpoint
async def post_client_revocations(request: Request) -> Response:
    principal = await principal_of(request)
    staff_only(principal)
    body = await body_of(request, _CERTS)
    _fields(body, {"revocations"})
    revocations = raw_list(
        body.get("revocations"), Limits.REVOCATION, "revocations", Limits.CERTS_PER_REQUEST
    )
    if not revocations:
        raise BadRequest("revocations: at least one revocation", field="revocations")
    async with _unit(request) as unit:
        await firmkeys.add_client_revocations(unit, principal, revocations)
    return ok({"revocations": len(revocations)}, status=201)


@json_endpoint
async def post_escrow(request: Request) -> Response:
    principal = await principal_of(request)
    roles.require(principal, "keys.manage")
    body = await body_of(request, _WRAPS + _SMALL)
    _fields(body, {"record", "wraps"})
    data = raw(body.get("record"), Limits.ESCROW, "record")
    wraps = _wraps(body)
    async with _unit(request) as unit:
        version = await firmkeys.add_escrow(unit, principal, data, wraps)
    return ok({"version": version}, status=201)


# --- a matter ---------------------------------------------------------------------------


def _since(request: Request) -> int:
    raw_since = request.query_params.get("since")
    if raw_since is None or raw_since == "":
        return 1
    if _SINCE_RE.fullmatch(raw_since) is None or int(raw_since) < 1:
        raise BadRequest("since must be an epoch number (1 or more)", field="since")
    return int(raw_since)


@json_endpoint
async def get_matter(request: Request) -> Response:
    principal = await principal_of(request)
    since = _since(request)
    async with db_of(request).read() as session:
        matter = await membership.can_access(session, principal, request.path_params["ref"])
        return ok(await reads.matter_body(session, principal, matter, since))


async def _staff_matter(
    request: Request, limit: int, *, manage: bool = True
) -> tuple[Any, dict[str, Any], Any]:
    """The caller, body and matter of a staff change; ``portal.manage`` on the matter
    (unless ``manage`` is off: a head refresh) is checked before the body is read."""
    principal = await principal_of(request)
    async with db_of(request).read() as session:
        matter = await membership.can_access(session, principal, request.path_params["ref"])
    staff_only(principal)
    if manage:
        roles.require(principal, "portal.manage", matter)
    return principal, await body_of(request, limit), matter


@json_endpoint
async def post_epoch(request: Request) -> Response:
    principal, body, matter = await _staff_matter(request, _EPOCH)
    _fields(body, {"manifest", "head", "wraps", "certs"})
    manifest = raw(body.get("manifest"), Limits.MANIFEST, "manifest")
    head = raw(body.get("head"), Limits.HEAD, "head")
    wraps, certs = _wraps(body), _certs(body)
    async with _unit(request) as unit:
        epoch = await epochs.post_epoch(unit, principal, matter, manifest, head, wraps, certs)
    return ok({"matter": matter.reference, "epoch": epoch}, status=201)


@json_endpoint
async def put_head(request: Request) -> Response:
    principal, body, matter = await _staff_matter(request, _SMALL, manage=False)
    _fields(body, {"head"})
    head = raw(body.get("head"), Limits.HEAD, "head")
    async with _unit(request) as unit:
        epoch = await epochs.put_head(unit, principal, matter, head)
    return ok({"matter": matter.reference, "epoch": epoch})


@json_endpoint
async def post_wraps(request: Request) -> Response:
    principal, body, matter = await _staff_matter(request, _WRAPS)
    _fields(body, {"wraps"})
    wraps = _wraps(body)
    if not wraps:
        raise BadRequest("wraps: at least one wrap", field="wraps")
    async with _unit(request) as unit:
        count = await epochs.add_wraps(unit, principal, matter, wraps)
    return ok({"matter": matter.reference, "wraps": count}, status=201)


# --- me ---------------------------------------------------------------------------------


@json_endpoint
async def get_me(request: Request) -> Response:
    principal = await principal_of(request)
    async with db_of(request).read() as session:
        return ok(await reads.me_body(session, principal))


async def _reauthenticated(request: Request, principal: Principal, secret: bytes) -> None:
    """The caller's current login secret, checked as sign-in checks it: a session
    alone (stolen, or script in the page) may not replace the keys or their only
    backup. Failed attempts count against the account (``rate_limited``)."""
    limiter = runtime_of(request).limiter
    key = f"{principal.kind}|{principal.id}"
    await limiter.hit("keys_me", key, limit=REAUTH_LIMIT, window=REAUTH_WINDOW)
    async with db_of(request).read() as session:
        credential = await credential_of(session, principal.kind, principal.id)
        verifier = credential.verifier if credential is not None else None
    if not (await passwords.hashing().verify(verifier, secret)).ok:
        raise InvalidCredentials(accounts.INVALID)
    await limiter.reset("keys_me", key)


@json_endpoint
async def put_me(request: Request) -> Response:
    principal = await principal_of(request)
    if principal.kind == "bot":
        raise NotFound("bots are certified from their key file (POST /api/v1/keys/certs)")
    body = await body_of(request, _SMALL)
    _fields(body, {"public_keys", "backup", "login_secret", "handover"})
    secret = secret_field(body, "login_secret")
    public_keys = raw(body.get("public_keys"), Limits.PUBLIC_KEYS, "public_keys")
    backup = base64url.decode(body.get("backup"), Limits.BACKUP, "backup")
    handover = base64url.decode(body.get("handover"), Limits.HANDOVER, "handover")
    await _reauthenticated(request, principal, secret)
    async with _unit(request) as unit:
        await firmkeys.register(unit, principal, public_keys, backup, handover)
    async with db_of(request).read() as session:
        return ok(await reads.me_body(session, principal))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/keys/firm", get_firm, methods=["GET"]),
        Route("/api/v1/keys/root", put_root, methods=["PUT"]),
        Route("/api/v1/keys/pending", get_pending, methods=["GET"]),
        Route("/api/v1/keys/certs", post_certs, methods=["POST"]),
        Route("/api/v1/keys/revocations", put_revocations, methods=["PUT"]),
        Route("/api/v1/keys/client-revocations", post_client_revocations, methods=["POST"]),
        Route("/api/v1/keys/escrow", post_escrow, methods=["POST"]),
        Route("/api/v1/keys/matters/{ref}", get_matter, methods=["GET"]),
        Route("/api/v1/keys/matters/{ref}/epochs", post_epoch, methods=["POST"]),
        Route("/api/v1/keys/matters/{ref}/head", put_head, methods=["PUT"]),
        Route("/api/v1/keys/matters/{ref}/wraps", post_wraps, methods=["POST"]),
        Route("/api/v1/keys/me", get_me, methods=["GET"]),
        Route("/api/v1/keys/me", put_me, methods=["PUT"]),
    ]

"""HTTP: welcome templates, the portal invite lifecycle and client acceptance
(docs/api.md "Portal invites"; docs/access.md is the contract).

Staff calls take a session; ``/api/v1/invites/open`` and ``/accept`` take
the link secret instead. Each service runs in one ``Unit``; after its
commit the queued email/SMS are delivered and, on removal or regenerated
login details, the contact's live websockets close on every worker.
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal.access import (
    acceptance,
    directory,
    invitelist,
    invites,
    membership,
    roles,
    templates,
)
from rtportal.access.invitesend import portal_url
from rtportal.closecodes import CLOSE_ACCESS_REMOVED, CLOSE_REVOKED
from rtportal.db.models import Firm
from rtportal.errors import BadRequest, PayloadTooLarge
from rtportal.events.unit import Unit
from rtportal.http.context import (
    check_origin,
    client_address,
    csrf_token,
    db_of,
    limit_address,
    ok,
    principal_body,
    principal_of,
    runtime_of,
    set_session_cookie,
    settings_of,
)
from rtportal.http.directory import body_of, staff_only
from rtportal.http.errors import json_endpoint
from rtportal.keys import handovers, relink
from rtportal.keys import invites as key_invites
from rtportal.keys.records import Limits, identity
from rtportal.keys.relink import RelinkCrypto
from rtportal.principal import Principal

__all__ = ["INVITE_LIMIT", "LINK_LIMIT", "link_attempt", "routes"]

_BODY = 64 * 1024
# A round with its crypto object: the epoch's manifest, head, wraps and
# certificates, and a welcome envelope per contact (docs/keys.md).
_ROUND_BODY = 4 * 1024 * 1024
# Invites sent (rounds count each contact, resends and regenerations one) per
# staff member and per source address, an hour.
INVITE_LIMIT = 200
INVITE_ADDRESS_LIMIT = 600
# Opens and accepts of invite links per source address, ten minutes.
LINK_LIMIT = 60
LINK_WINDOW = 600.0


async def _count_invites(request: Request, principal: Principal, n: int) -> None:
    limiter = runtime_of(request).limiter
    address = limit_address(request)
    for _ in range(n):
        await limiter.hit("invite", f"staff:{principal.id}", limit=INVITE_LIMIT, window=3600)
        await limiter.hit("invite", f"addr:{address}", limit=INVITE_ADDRESS_LIMIT, window=3600)


def _unit(request: Request) -> Unit:
    return Unit(db_of(request), request.app.state.hub.publish, settings_of(request))


async def _close(request: Request, closing: invites.Closing) -> None:
    hub = request.app.state.hub
    if closing.membership_ended:
        await hub.close_access(
            closing.matter_id, "contact", closing.contact_id, CLOSE_ACCESS_REMOVED
        )
    if closing.sessions_revoked:
        await hub.close_principal("contact", closing.contact_id, CLOSE_REVOKED)


# --- templates ------------------------------------------------------------------------


@json_endpoint
async def list_templates(request: Request) -> Response:
    principal = await principal_of(request)
    staff_only(principal)
    async with db_of(request).write() as session:  # the default is created on first use
        rows = await templates.list_templates(session, principal.firm_id)
        body = [templates.template_body(r) for r in rows]
    return ok({"templates": body, "fields": list(templates.FIELDS)})


@json_endpoint
async def create_template(request: Request) -> Response:
    principal = await principal_of(request)
    staff_only(principal)
    roles.require(principal, "firm.manage")
    data = templates.parse_template(await body_of(request, _BODY))
    async with db_of(request).write() as session:
        row = await templates.save_template(session, principal.firm_id, data)
        body = templates.template_body(row)
    return ok({"template": body}, status=201)


@json_endpoint
async def patch_template(request: Request) -> Response:
    principal = await principal_of(request)
    staff_only(principal, "template")
    data = templates.parse_template(await body_of(request, _BODY), partial=True)
    async with db_of(request).write() as session:
        row = await templates.get_template(session, principal.firm_id, request.path_params["id"])
        roles.require(principal, "firm.manage")
        row = await templates.save_template(session, principal.firm_id, data, row)
        body = templates.template_body(row)
    return ok({"template": body})


@json_endpoint
async def draft(request: Request) -> Response:
    """The welcome message for one contact as the flyout shows it: merged, with
    ``{portal_link}`` left as a placeholder (the link is made when sending)."""
    principal = await principal_of(request)
    raw = request.query_params.get("contact_id", "")
    async with db_of(request).write() as session:
        matter = await membership.can_access(session, principal, request.path_params["ref"])
        staff_only(principal, "matter")
        contact_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 16 else None
        contact = await directory.get_contact(session, principal.firm_id, contact_id)
        firm = await session.get(Firm, matter.firm_id)
        assert firm is not None
        template = await templates.default_template(session, firm.id)
        values = {
            "company": firm.name,
            "client_name": contact.display_name,
            "matter_ref": matter.reference,
        }
        body = {
            "template_id": template.id,
            "subject": templates.merge(template.subject, values),
            "body": templates.merge(template.body, values),
            "email": await directory.primary_email(session, contact.id),
            "mobile": await directory.primary_mobile(session, contact.id),
        }
    return ok(body)


# --- the lifecycle ---------------------------------------------------------------------


@json_endpoint
async def send_invites(request: Request) -> Response:
    principal = await principal_of(request)
    # Access first: a caller who may not invite here never gets a 4 MiB body parsed.
    async with db_of(request).read() as session:
        matter = await membership.can_access(session, principal, request.path_params["ref"])
        firm = await session.get(Firm, matter.firm_id)
        assert firm is not None
    roles.require(principal, "portal.manage", matter)
    body = await body_of(request, _ROUND_BODY)
    crypto = key_invites.parse_crypto(body.pop("crypto", None))
    requests, subject, text = invites.parse_round(body)
    runtime = runtime_of(request)
    await _count_invites(request, principal, len(requests))
    async with _unit(request) as unit:
        sent = await key_invites.e2ee_round(
            unit,
            settings_of(request),
            runtime.notifier,
            principal,
            matter,
            requests,
            subject,
            text,
            client_address(request),
            crypto,
        )
        ids = [i.id for i in sent.invites]
    await runtime.notifier.deliver(sent.messages)
    answer: dict[str, object] = {"portal": "on", "invites": ids}
    if crypto is not None:
        answer["delivery"] = crypto.delivery
        answer["links"] = key_invites.link_bodies(sent, portal_url(settings_of(request), firm))
    return ok(answer, status=201)


@json_endpoint
async def list_invites(request: Request) -> Response:
    principal = await principal_of(request)
    async with db_of(request).read() as session:
        matter = await membership.can_access(session, principal, request.path_params["ref"])
        staff_only(principal, "matter")
        rows = await invitelist.list_invites(session, matter)
        await handovers.annotate(session, matter, rows)
    portal = any(row["status"] in invites.LIVE for row in rows)
    return ok({"matter": matter.reference, "portal": "on" if portal else "off", "invites": rows})


async def _relink_body(request: Request) -> tuple[str | None, RelinkCrypto | None]:
    """``{method?, crypto?}`` of a resend or regeneration (``crypto``: an encrypted firm's
    new key, docs/keys.md "Regenerate login details / lost password")."""
    body = await body_of(request, _ROUND_BODY, allow_empty=True)
    unknown = set(body) - {"method", "crypto"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    crypto = relink.parse_relink_crypto(body.get("crypto"))
    raw = body.get("method")
    return (None if raw is None else invites.parse_method(raw)), crypto


async def _relink(request: Request, act: Literal["resend", "regenerate"]) -> Response:
    principal = await principal_of(request)
    method, crypto = await _relink_body(request)
    staff_only(principal, "invite")
    await _count_invites(request, principal, 1)
    runtime = runtime_of(request)
    async with db_of(request).read() as session:
        firm = await session.get(Firm, principal.firm_id)
        assert firm is not None
    async with _unit(request) as unit:
        sent, closing = await relink.relink(
            unit,
            settings_of(request),
            runtime.notifier,
            principal,
            request.path_params["id"],
            method,
            client_address(request),
            crypto,
            act,
        )
        invite_id = sent.invites[0].id
    if closing is not None:
        await _close(request, closing)
    await runtime.notifier.deliver(sent.messages)
    answer: dict[str, object] = {"invite": invite_id}
    if crypto is not None:
        answer["delivery"] = crypto.delivery
        answer["links"] = key_invites.link_bodies(sent, portal_url(settings_of(request), firm))
    return ok(answer)


@json_endpoint
async def resend(request: Request) -> Response:
    return await _relink(request, "resend")


@json_endpoint
async def remove(request: Request) -> Response:
    principal = await principal_of(request)
    await body_of(request, 1024, allow_empty=True)
    async with _unit(request) as unit:
        invite, closing = await invites.remove(
            unit, principal, request.path_params["id"], client_address(request)
        )
        invite_id = invite.id
    await _close(request, closing)
    return ok({"invite": invite_id, "status": "removed"})


@json_endpoint
async def regenerate(request: Request) -> Response:
    return await _relink(request, "regenerate")


# --- the client's side ----------------------------------------------------------------


async def link_attempt(request: Request) -> None:
    """Count one use of a link secret (invite or staff setup) by the caller's address."""
    address = limit_address(request)
    await runtime_of(request).limiter.hit(
        "invite_link", address, limit=LINK_LIMIT, window=LINK_WINDOW
    )


@json_endpoint
async def open_invite(request: Request) -> Response:
    check_origin(request)
    body = await body_of(request, 1024)
    await link_attempt(request)
    return ok(await acceptance.open_invite(db_of(request), settings_of(request), body.get("token")))


@json_endpoint
async def accept(request: Request) -> Response:
    # A foreign page must not sign a visitor in to an account of its choosing.
    check_origin(request)
    parsed = acceptance.parse_acceptance(await body_of(request, 3 * _BODY))
    # The identity and backup the key directory keeps (docs/keys.md): bounded, and
    # the public keys a usable rtp1 record.
    if parsed.key_backup is not None and len(parsed.key_backup) > Limits.BACKUP:
        raise PayloadTooLarge(f"key_backup: over {Limits.BACKUP} bytes")
    if parsed.public_keys is not None:
        if len(parsed.public_keys) > Limits.PUBLIC_KEYS:
            raise PayloadTooLarge(f"public_keys: over {Limits.PUBLIC_KEYS} bytes")
        identity(parsed.public_keys)
    await link_attempt(request)
    made = await acceptance.accept(
        db_of(request),
        request.app.state.hub.publish,
        settings_of(request),
        runtime_of(request).limiter,
        parsed,
        client_address(request),
    )
    response = ok(
        {
            "principal": principal_body(made.principal),
            "csrf_token": csrf_token(request, made.principal),
        },
        status=201,
    )
    set_session_cookie(request, response, made)
    return response


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/templates", list_templates, methods=["GET"]),
        Route("/api/v1/templates", create_template, methods=["POST"]),
        Route("/api/v1/templates/{id:int}", patch_template, methods=["PATCH"]),
        Route("/api/v1/matters/{ref}/invites/draft", draft, methods=["GET"]),
        Route("/api/v1/matters/{ref}/invites", send_invites, methods=["POST"]),
        Route("/api/v1/matters/{ref}/invites", list_invites, methods=["GET"]),
        Route("/api/v1/invites/open", open_invite, methods=["POST"]),
        Route("/api/v1/invites/accept", accept, methods=["POST"]),
        Route("/api/v1/invites/{id:int}/resend", resend, methods=["POST"]),
        Route("/api/v1/invites/{id:int}/remove", remove, methods=["POST"]),
        Route("/api/v1/invites/{id:int}/regenerate", regenerate, methods=["POST"]),
    ]

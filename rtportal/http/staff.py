"""Staff management (org admins) and the staff setup link, over HTTP.

Reference: docs/api.md "Staff"; who may: docs/access.md "Roles".
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal.access import roles, totp
from rtportal.access import staff as service
from rtportal.access.credentials import Kdf, set_login
from rtportal.access.sessions import load_principal
from rtportal.closecodes import CLOSE_REVOKED
from rtportal.errors import BadRequest, NotFound
from rtportal.http.auth import secret_field, signed_in, text_field
from rtportal.http.bodies import json_object
from rtportal.http.context import (
    check_origin,
    client_address,
    db_of,
    ok,
    principal_of,
    runtime_of,
    settings_of,
)
from rtportal.http.errors import json_endpoint
from rtportal.http.invites import link_attempt
from rtportal.principal import Principal
from rtportal.reviews import acts as reviews
from rtportal.reviews.live import ReviewCounts

__all__ = ["routes"]

_SMALL_BODY = 4096


async def _admin(request: Request) -> Principal:
    principal = await principal_of(request)
    roles.require(principal, "staff.manage")
    return principal


def _user_id(request: Request) -> int:
    raw = request.path_params["user_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise NotFound("no such staff member")
    return int(raw)


@json_endpoint
async def list_staff(request: Request) -> Response:
    actor = await _admin(request)
    async with db_of(request).read() as session:
        users = await service.list_staff(session, actor.firm_id)
    return ok({"staff": [service.staff_json(u) for u in users]})


@json_endpoint
async def invite_staff(request: Request) -> Response:
    actor = await _admin(request)
    body = await json_object(request, _SMALL_BODY)
    email = text_field(body, "email", 320)
    name = text_field(body, "name", 200)
    role = text_field(body, "role", 20)
    runtime = runtime_of(request)
    async with db_of(request).write() as session:
        user, message = await service.invite(
            session,
            settings_of(request),
            runtime.notifier,
            actor,
            email=email,
            name=name,
            role=role,
            address=client_address(request),
        )
        answer = service.staff_json(user)
        message_id = message.id
    await runtime.notifier.deliver([message_id])
    return ok({"staff": answer}, status=201)


@json_endpoint
async def resend_setup(request: Request) -> Response:
    actor = await _admin(request)
    user_id = _user_id(request)
    runtime = runtime_of(request)
    async with db_of(request).write() as session:
        message = await service.resend_setup(
            session, settings_of(request), runtime.notifier, actor, user_id, client_address(request)
        )
        message_id = message.id
    await runtime.notifier.deliver([message_id])
    return ok({"ok": True})


@json_endpoint
async def update_staff(request: Request) -> Response:
    actor = await _admin(request)
    user_id = _user_id(request)
    body = await json_object(request, _SMALL_BODY)
    unknown = set(body) - {"role", "status"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    role, status = body.get("role"), body.get("status")
    if (role is not None and not isinstance(role, str)) or (
        status is not None and not isinstance(status, str)
    ):
        raise BadRequest("role and status must be strings")
    async with db_of(request).write() as session:
        changed = await service.change(
            session, actor, user_id, role=role, status=status, address=client_address(request)
        )
        # Nobody else sees their inbox: their open reviews go to whom the rule names now.
        handed = await reviews.hand_over(session, user_id) if changed.disabled else []
        answer = service.staff_json(changed.user)
    counts: ReviewCounts | None = getattr(request.app.state, "review_counts", None)
    if counts is not None:
        for queued in handed:  # committed: the new reviewers' live counts
            counts.touch(queued)
    if changed.disabled or changed.sessions_ended:
        # After commit: their live websockets on every worker close with 4010.
        await request.app.state.hub.close_principal("staff", user_id, CLOSE_REVOKED)
    return ok({"staff": answer})


@json_endpoint
async def open_setup(request: Request) -> Response:
    """What the setup page shows: the firm, the member, and a fresh salt."""
    check_origin(request)
    body = await json_object(request, _SMALL_BODY)
    await link_attempt(request)
    settings = settings_of(request)
    async with db_of(request).read() as session:
        firm, user = await service.open_setup(session, settings, body.get("token"))
        answer = {
            "firm": {"name": firm.name, "slug": firm.slug},
            "email": user.email,
            "name": user.display_name,
            "kdf": Kdf.new(settings).to_json(),
        }
    return ok(answer)


@json_endpoint
async def accept_setup(request: Request) -> Response:
    """Set the password through the setup link (once) and sign in."""
    check_origin(request)  # login CSRF, as sign-in and invite acceptance
    body = await json_object(request, _SMALL_BODY)
    settings = settings_of(request)
    kdf = Kdf.parse(body.get("kdf")).check(settings)
    secret = secret_field(body, "login_secret")
    await link_attempt(request)
    async with db_of(request).write() as session:
        firm, user = await service.accept_setup(session, settings, body.get("token"))
        credential = await set_login(
            session,
            firm_id=firm.id,
            principal_kind="staff",
            principal_id=user.id,
            email=user.email,
            kdf=kdf,
            login_secret=secret,
        )
        principal = await load_principal(session, "staff", user.id)
        if totp.required_for(firm, "staff", principal.role):
            # The password is set and the member active, but this role needs a
            # second factor: no session until a sign-in with a code (the
            # sign-in starts the enrolment: POST /api/v1/signin "totp_setup").
            return ok({"password_set": True, "second_factor_required": True})
        response = await signed_in(request, session, principal, credential, None)
    return response


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/staff", list_staff, methods=["GET"]),
        Route("/api/v1/staff", invite_staff, methods=["POST"]),
        Route("/api/v1/staff/{user_id}", update_staff, methods=["PATCH"]),
        Route("/api/v1/staff/{user_id}/resend-setup", resend_setup, methods=["POST"]),
        Route("/api/v1/setup/open", open_setup, methods=["POST"]),
        Route("/api/v1/setup/accept", accept_setup, methods=["POST"]),
    ]

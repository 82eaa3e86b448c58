"""The demo matter's portal: the demo client accepted her invite and has a password.

``seed_portal`` is idempotent like the rest of the demo seed: it gives
the client an active invite on the demo matter (with its welcome item in
the stream) and a credential for ``DEMO_CLIENT_PASSWORD``, derived as the
browser derives it (Argon2id, then HKDF "rtp1/login"), unless she already
has an invite there.
"""

from __future__ import annotations

from sqlalchemy import select

from rtportal.access import directory, templates
from rtportal.access.credentials import credential_of, set_password_text
from rtportal.db.models import Contact, Firm, Invite, Matter, utcnow
from rtportal.events.unit import Unit
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = ["DEMO_CLIENT_PASSWORD", "seed_portal"]

# Printed by `rtportal serve --demo`: a demo-only account, never a real one.
DEMO_CLIENT_PASSWORD = "harbour-demo-client"  # noqa: S105


async def seed_portal(
    unit: Unit, settings: Settings, matter: Matter, client: Contact, actor: Principal
) -> None:
    """Turn the demo matter's portal on with ``client`` active (once)."""
    session = unit.session
    found = await session.execute(
        select(Invite.id).where(Invite.matter_id == matter.id, Invite.contact_id == client.id)
    )
    if found.first() is not None:
        return
    firm = await session.get(Firm, matter.firm_id)
    assert firm is not None
    await directory.link_applicant(session, matter, client)
    template = await templates.default_template(session, firm.id)
    values = {
        "company": firm.name,
        "client_name": client.display_name,
        "matter_ref": matter.reference,
    }
    now = utcnow()
    invite = Invite(
        firm_id=firm.id,
        matter_id=matter.id,
        contact_id=client.id,
        method="email",
        see_applicants=True,
        status="active",
        subject=templates.merge(template.subject, values),
        body=templates.merge(template.body, values),
        created_by=actor.id,
        sent_at=now,
        accepted_at=now,
    )
    session.add(invite)
    await session.flush()
    email = await directory.primary_email(session, client.id)
    assert email is not None
    if await credential_of(session, "contact", client.id) is None:
        await set_password_text(
            session,
            settings,
            firm_id=firm.id,
            principal_kind="contact",
            principal_id=client.id,
            email=email,
            password=DEMO_CLIENT_PASSWORD,
        )
    portal = {"portal_link": "/"}
    await unit.append(
        matter=matter,
        actor=actor,
        kind="welcome",
        audience="portal",
        payload={
            "thread": f"welcome-{invite.id}",
            "to": [client.id],
            "subject": templates.merge(invite.subject, portal),
            "text": templates.merge(invite.body, portal),
        },
        system=True,
    )

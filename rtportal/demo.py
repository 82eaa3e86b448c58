"""The demo firm seed, and the small creation helpers it (and the tests) use.

``seed_demo`` is idempotent: it finds the demo firm by its matter reference
``AAAA0000`` and only creates what is missing, so ``rtportal serve --demo``
can run at every start. The demo matter's conversation is end-to-end
encrypted through ``rtportal.sdk`` (``rtportal.demoportal``): nothing of it
is stored in plaintext. Each run issues, for every demo user, a fresh
login link (single-use, valid ``settings.login_link_ttl`` seconds) and a
fresh API token for curl (30 days), because only hashes are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access.credentials import credential_of, set_password_text
from rtportal.access.directory import new_matter_reference
from rtportal.access.sessions import issue_login_link, issue_token
from rtportal.db import Database
from rtportal.db.models import (
    Contact,
    ContactEmail,
    ContactPhone,
    Firm,
    Matter,
    MatterApplicant,
    MatterMember,
    StaffUser,
)
from rtportal.demoportal import DEMO_CLIENT_PASSWORD, DemoKeyUser, seed_portal
from rtportal.events.unit import Publish, Unit
from rtportal.principal import Principal, PrincipalKind
from rtportal.settings import Settings
from rtportal.timeline.change import move
from rtportal.timeline.types import PhaseInput, StepInput, TypeInput, create_type

__all__ = [
    "DEMO_FIRM",
    "DEMO_MATTER",
    "DEMO_PASSWORD",
    "DemoUser",
    "add_member",
    "create_contact",
    "create_firm",
    "create_matter",
    "create_staff",
    "format_demo",
    "new_matter_reference",
    "seed_demo",
    "slug_of",
]

DEMO_FIRM = "Harbour & Finch Migration"
DEMO_MATTER = "AAAA0000"
# The demo staff's password (printed by ``rtportal serve --demo``; a demo only).
DEMO_PASSWORD = "harbour-finch-demo"  # noqa: S105 - published: a demo firm only


def slug_of(name: str) -> str:
    """``"Harbour & Finch Migration"`` -> ``"harbour-finch-migration"`` (at most 48 characters)."""
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in name.lower()).split()
    return "-".join(words)[:48].strip("-") or "firm"


async def create_firm(session: AsyncSession, name: str, *, slug: str | None = None) -> Firm:
    """A firm; its slug is derived from the name (a suffix makes it unique) unless given."""
    chosen = slug
    base = slug_of(name)
    n = 1
    while chosen is None:
        candidate = base if n == 1 else f"{base}-{n}"
        taken = await session.execute(select(Firm.id).where(Firm.slug == candidate))
        if taken.scalar_one_or_none() is None:
            chosen = candidate
        n += 1
    firm = Firm(name=name, slug=chosen)
    session.add(firm)
    await session.flush()
    return firm


async def create_staff(
    session: AsyncSession, firm: Firm, *, email: str, display_name: str, role: str = "staff"
) -> Principal:
    """A staff member (or a bot with ``role="bot"``) of ``firm``."""
    user = StaffUser(firm_id=firm.id, email=email, display_name=display_name, role=role)
    session.add(user)
    await session.flush()
    return Principal("bot" if role == "bot" else "staff", user.id, firm.id, display_name, role=role)


async def create_contact(
    session: AsyncSession,
    firm: Firm,
    *,
    display_name: str,
    email: str | None = None,
    phone: str | None = None,
    personal_mobile: bool = False,
) -> Principal:
    """A contact with at most one email address and one phone number (the
    access package's contact service takes several of each)."""
    contact = Contact(firm_id=firm.id, display_name=display_name)
    session.add(contact)
    await session.flush()
    if email is not None:
        session.add(ContactEmail(contact_id=contact.id, address=email.lower(), position=0))
    if phone is not None:
        session.add(
            ContactPhone(
                contact_id=contact.id, number=phone, personal_mobile=personal_mobile, position=0
            )
        )
    await session.flush()
    return Principal("contact", contact.id, firm.id, display_name)


async def create_matter(
    session: AsyncSession,
    firm: Firm,
    *,
    title: str,
    reference: str | None = None,
    responsible: Principal | None = None,
) -> Matter:
    """A matter with a globally unique reference (random unless given)."""
    ref = reference
    while ref is None:
        candidate = new_matter_reference()
        taken = await session.execute(select(Matter.id).where(Matter.reference == candidate))
        if taken.scalar_one_or_none() is None:
            ref = candidate
    matter = Matter(
        firm_id=firm.id,
        reference=ref,
        title=title,
        responsible_staff_id=responsible.id if responsible else None,
        last_seq=0,
    )
    session.add(matter)
    await session.flush()
    return matter


async def add_member(session: AsyncSession, matter: Matter, principal: Principal) -> MatterMember:
    """Admit a contact (role ``client``) or a bot (role ``bot``) to ``matter``."""
    if principal.kind == "staff":
        raise ValueError("staff see every matter of their firm; they are not members")
    member = MatterMember(
        matter_id=matter.id,
        principal_kind=principal.kind,
        principal_id=principal.id,
        role="client" if principal.kind == "contact" else "bot",
    )
    session.add(member)
    await session.flush()
    return member


@dataclass(frozen=True, slots=True)
class DemoUser:
    role: str
    principal: Principal
    email: str
    login: str  # a login link's token (single-use, short-lived)
    token: str  # an API (bearer) token
    password: str | None = None  # staff: their demo password
    firm_slug: str = ""


async def _find_demo(session: AsyncSession) -> Matter | None:
    result = await session.execute(select(Matter).where(Matter.reference == DEMO_MATTER))
    return result.scalar_one_or_none()


async def _staff_by_email(session: AsyncSession, firm_id: int, email: str) -> Principal:
    user = (
        await session.execute(
            select(StaffUser).where(StaffUser.firm_id == firm_id, StaffUser.email == email)
        )
    ).scalar_one()
    kind: PrincipalKind = "bot" if user.role == "bot" else "staff"
    return Principal(kind, user.id, firm_id, user.display_name, role=user.role)


async def _create_demo(unit: Unit) -> None:
    session = unit.session
    firm = await create_firm(session, DEMO_FIRM)
    admin = await create_staff(
        session,
        firm,
        email="olivia@harbourfinch.example",
        display_name="Olivia Harbour",
        role="org_admin",
    )
    sam = await create_staff(
        session, firm, email="sam@harbourfinch.example", display_name="Sam Finch", role="staff"
    )
    bot = await create_staff(
        session, firm, email="bot@harbourfinch.example", display_name="Visa Tracker", role="bot"
    )
    await create_contact(
        session,
        firm,
        display_name="Amira Haddad",
        email="amira@client.example",
        phone="+61400000000",
        personal_mobile=True,
    )
    matter = await create_matter(
        session, firm, title="Skilled visa 189 - Haddad", reference=DEMO_MATTER, responsible=admin
    )
    await add_member(session, matter, bot)
    await _visa_timeline(unit, firm, admin, matter)
    # A second matter whose portal is still OFF: two applicants to invite.
    partner = await create_matter(
        session, firm, title="Partner visa 820 - Nguyen", reference="AAAA0001", responsible=sam
    )
    for name, email, phone in (
        ("Linh Nguyen", "linh@client.example", "+61400000001"),
        ("Minh Tran", "minh@client.example", None),
    ):
        applicant = await create_contact(
            session, firm, display_name=name, email=email, phone=phone, personal_mobile=True
        )
        session.add(MatterApplicant(matter_id=partner.id, contact_id=applicant.id))


# The demo's matter type: internal phases (staff only) over the steps a client sees.
_VISA_STEPS = (
    ("Getting started", "We confirm your eligibility and plan your application."),
    ("Gathering documents", "Send us the documents we ask for; we check each one."),
    ("Lodged", "Your application is with the Department of Home Affairs."),
    ("Decision", "The Department has decided; we explain what it means for you."),
)
_VISA_PHASES = (
    ("Conflict check and engagement", 0),
    ("Eligibility assessment", 0),
    ("Documents requested", 1),
    ("Documents under review", 1),
    ("Awaiting skills assessment body", None),
    ("Application lodged", 2),
    ("Further information requested", 2),
    ("Granted or refused", 3),
)


async def _visa_timeline(unit: Unit, firm: Firm, admin: Principal, matter: Matter) -> None:
    """A "Skilled visa (subclass 189)" type; the demo matter waits on documents."""
    data = TypeInput(
        "Skilled visa (subclass 189)",
        [StepInput(None, name, text) for name, text in _VISA_STEPS],
        [PhaseInput(None, name, step) for name, step in _VISA_PHASES],
    )
    loaded = await create_type(unit.session, firm.id, data)
    await move(unit, admin, matter, loaded.phases[3].id)


async def _demo_user(
    session: AsyncSession, settings: Settings, role: str, principal: Principal, email: str
) -> DemoUser:
    login = await issue_login_link(session, settings, principal.kind, principal.id)
    token = await issue_token(
        session,
        settings.secret_key,
        principal.kind,
        principal.id,
        label="demo",
        ttl=timedelta(days=30),
    )
    return DemoUser(role, principal, email, login, token)


async def seed_demo(
    db: Database, settings: Settings, publish: Publish | None = None
) -> list[DemoUser]:
    """Create the demo firm if missing; return its users with fresh login links and tokens.

    The sample events are published after the commit when ``publish`` is
    given (a running worker's hub); the command line seeds with nobody
    listening."""
    async with Unit(db, publish) as unit:
        session = unit.session
        matter = await _find_demo(session)
        if matter is None:
            await _create_demo(unit)
            matter = await _find_demo(session)
            assert matter is not None
        firm_id = matter.firm_id
        users: list[DemoUser] = []
        for role, email in (
            ("org admin", "olivia@harbourfinch.example"),
            ("staff", "sam@harbourfinch.example"),
            ("bot", "bot@harbourfinch.example"),
        ):
            principal = await _staff_by_email(session, firm_id, email)
            user = await _demo_user(session, settings, role, principal, email)
            if role != "bot":
                user = await _with_password(session, settings, user)
            users.append(user)
        contact = (
            await session.execute(
                select(Contact)
                .join(ContactEmail, ContactEmail.contact_id == Contact.id)
                .where(Contact.firm_id == firm_id, ContactEmail.address == "amira@client.example")
            )
        ).scalar_one()
        principal = Principal("contact", contact.id, firm_id, contact.display_name)
        users.append(
            await _demo_user(session, settings, "client", principal, "amira@client.example")
        )
    # The demo matter's portal is on: keys, Amira's invite and acceptance, and the
    # conversation, all end-to-end encrypted through rtportal.sdk (rtportal.demoportal).
    admin, staff = users[0], users[1]
    await seed_portal(
        settings,
        firm=admin.firm_slug,
        matter=DEMO_MATTER,
        admin=DemoKeyUser(admin.email, admin.token, DEMO_PASSWORD),
        staff=DemoKeyUser(staff.email, staff.token, DEMO_PASSWORD),
        client_contact_id=contact.id,
    )
    return users


async def _with_password(session: AsyncSession, settings: Settings, user: DemoUser) -> DemoUser:
    """The demo staff member with ``DEMO_PASSWORD`` (set once; kept if changed since)."""
    firm = await session.get(Firm, user.principal.firm_id)
    assert firm is not None
    if await credential_of(session, "staff", user.principal.id) is None:
        staff = await session.get(StaffUser, user.principal.id)
        assert staff is not None
        staff.status = "active"
        await set_password_text(
            session,
            settings,
            firm_id=firm.id,
            principal_kind="staff",
            principal_id=user.principal.id,
            email=user.email,
            password=DEMO_PASSWORD,
        )
    return replace(user, password=DEMO_PASSWORD, firm_slug=firm.slug)


def format_demo(users: list[DemoUser], public_url: str, frk_file: Path | None = None) -> str:
    """Human instructions: a login link per user (token in the URL fragment) and curl;
    the staff's password sign-in."""
    base = public_url.rstrip("/")
    lines = [
        f"Demo firm: {DEMO_FIRM}; matter {DEMO_MATTER} (portal on), AAAA0001 (portal off:"
        " invite its applicants)",
        f"The {DEMO_MATTER} conversation is end-to-end encrypted: sign in with a password"
        " below to read it (a login link opens a session without the keys: the page shows"
        " the stream, but not what the messages say).",
        "",
    ]
    for user in users:
        if user.password is not None:
            lines.append(
                f"staff sign-in: {base}/?firm={user.firm_slug} {user.email} / {user.password}"
            )
    if any(user.password is not None for user in users):
        lines += [
            "  (an org admin's first sign-in sets up an authenticator app: every org admin",
            "   uses a second factor. Its key is emailed; with no email provider it waits",
            "   in the outbox: read it with the outbox curl line below)",
            "",
        ]
    for user in users:
        lines += [
            f"{user.role}: {user.principal.display_name} <{user.email}>",
            f"  login link: {base}/#token={user.login}",
            f"  API:        curl -H 'Authorization: Bearer {user.token}' "
            f"{base}/api/v1/matters/{DEMO_MATTER}/events",
            "",
        ]
    lines += [
        f"client sign-in: {base}/?firm={slug_of(DEMO_FIRM)} as amira@client.example, "
        f"password {DEMO_CLIENT_PASSWORD} (the demo matter's portal is on)",
        "",
    ]
    admins = [u for u in users if u.role == "org admin"]
    if admins:
        lines += [
            "Outbox: the email and SMS the portal holds while no provider is set "
            "(RTPORTAL_SMTP_URL, RTPORTAL_SMS_URL; docs/operations.md), for org admins:",
            f"  curl -H 'Authorization: Bearer {admins[0].token}' {base}/api/v1/outbox",
            "",
        ]
    if admins and frk_file is not None:
        lines += [
            f"Firm root key (demo only, owner-only file): {frk_file}; approve staff keys with",
            f"  rtportal firm-keys approve --url {base} --firm {admins[0].firm_slug}"
            f" --email {admins[0].email} --key {frk_file} --totp <code>",
            "  (<code>: from the authenticator app the org admin enrols at their first"
            " sign-in in the browser)",
            "",
        ]
    lines.append(
        "A login link works once, within 15 minutes (run the command again for "
        "fresh ones). Its token rides in the URL fragment (#...), which browsers never "
        "send to the server; the page exchanges it for an HttpOnly session cookie via "
        "POST /api/v1/session."
    )
    return "\n".join(lines)

"""Matters, contacts and applicants of a firm: create, read, edit, link.

Every function works in the caller's transaction and takes objects of the
caller's firm only: another firm's matter or contact is ``NotFound``, as
a missing one is. Input is checked here (``parse_contact``,
``parse_matter``): bounded lists, email addresses, E.164 phone numbers,
each refusal a ``BadRequest`` whose ``details.field`` names the field.
Permissions are the caller's (``rtportal.access.roles``).
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access.membership import valid_matter_ref
from rtportal.db.models import (
    Contact,
    ContactEmail,
    ContactPhone,
    Matter,
    MatterApplicant,
    StaffUser,
)
from rtportal.errors import BadRequest, Conflict, NotFound

__all__ = [
    "MAX_EMAILS",
    "MAX_ID",
    "MAX_PHONES",
    "ContactInput",
    "MatterInput",
    "PhoneInput",
    "applicants_of",
    "contact_body",
    "create_contact",
    "create_matter",
    "find_contacts",
    "get_contact",
    "link_applicant",
    "new_matter_reference",
    "parse_contact",
    "parse_matter",
    "primary_email",
    "primary_mobile",
    "unlink_applicant",
    "update_contact",
    "update_matter",
]

MAX_EMAILS = 10
MAX_PHONES = 10
MAX_NAME = 200
MAX_TITLE = 300
MAX_MATTER_TYPE = 64
MAX_QUERY = 100
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL: larger ones never exist
# Deliberately simple: one @, a dotted domain, no spaces or angle brackets.
_EMAIL_RE = re.compile(r"[^@\s<>,;\"()\[\]]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")
_E164_RE = re.compile(r"\+[1-9][0-9]{6,14}")


def _bad(field: str, message: str) -> BadRequest:
    return BadRequest(f"{field}: {message}", field=field)


def _text(raw: object, field: str, maximum: int, *, required: bool = True) -> str | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise _bad(field, "must be a non-empty string")
    value = raw.strip()
    if len(value) > maximum:
        raise _bad(field, f"is over {maximum} characters")
    return value


def _unknown(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")


@dataclass(frozen=True, slots=True)
class PhoneInput:
    number: str
    personal_mobile: bool


@dataclass(frozen=True, slots=True)
class ContactInput:
    """A contact's fields; ``None`` means "not given" (PATCH keeps the stored value)."""

    name: str | None
    emails: list[str] | None
    phones: list[PhoneInput] | None


_CONTACT_FIELDS = frozenset({"name", "emails", "phones"})


def is_email(text: str) -> bool:
    """The one address rule (contacts, staff, the first org admin): one mailbox,
    no list separators, display names or spaces, a dotted domain, ≤ 254 bytes."""
    return len(text) <= 254 and _EMAIL_RE.fullmatch(text) is not None


def _emails(raw: object) -> list[str]:
    if not isinstance(raw, list) or len(raw) > MAX_EMAILS:
        raise _bad("emails", f"must be a list of at most {MAX_EMAILS} addresses")
    seen: list[str] = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not is_email(item.strip()):
            raise _bad(f"emails[{i}]", "not an email address")
        address = item.strip().lower()
        if address not in seen:
            seen.append(address)
    return seen


def _phones(raw: object) -> list[PhoneInput]:
    if not isinstance(raw, list) or len(raw) > MAX_PHONES:
        raise _bad("phones", f"must be a list of at most {MAX_PHONES} numbers")
    out: list[PhoneInput] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) - {"number", "personal_mobile"}:
            raise _bad(f"phones[{i}]", "must be {number, personal_mobile}")
        number = item.get("number")
        if not isinstance(number, str) or not _E164_RE.fullmatch(number):
            raise _bad(f"phones[{i}].number", "must be an E.164 number such as +61400000000")
        mobile = item.get("personal_mobile", False)
        if not isinstance(mobile, bool):
            raise _bad(f"phones[{i}].personal_mobile", "must be a boolean")
        if all(p.number != number for p in out):
            out.append(PhoneInput(number, mobile))
    return out


def parse_contact(body: dict[str, Any], *, partial: bool = False) -> ContactInput:
    """A contact body (``POST``: ``name`` required; ``PATCH``: every field optional)."""
    _unknown(body, _CONTACT_FIELDS)
    name = _text(body.get("name"), "name", MAX_NAME, required=not partial or "name" in body)
    emails = _emails(body["emails"]) if "emails" in body else ([] if not partial else None)
    phones = _phones(body["phones"]) if "phones" in body else ([] if not partial else None)
    return ContactInput(name, emails, phones)


@dataclass(frozen=True, slots=True)
class MatterInput:
    reference: str | None
    title: str | None
    matter_type: str | None
    responsible_staff_id: int | None
    given: frozenset[str]  # which fields the body named (PATCH changes only these)


_MATTER_FIELDS = frozenset({"reference", "title", "matter_type", "responsible_staff_id"})


def parse_matter(body: dict[str, Any], *, partial: bool = False) -> MatterInput:
    """A matter body (``POST``: ``title`` required; ``PATCH``: no ``reference``)."""
    _unknown(body, _MATTER_FIELDS - ({"reference"} if partial else frozenset()))
    reference = body.get("reference")
    if reference is not None and not valid_matter_ref(reference):
        raise _bad("reference", "must be 4 capital letters and 4 digits (AAAA0000)")
    title = _text(body.get("title"), "title", MAX_TITLE, required=not partial or "title" in body)
    matter_type = body.get("matter_type")
    if matter_type is not None:
        matter_type = _text(matter_type, "matter_type", MAX_MATTER_TYPE)
    staff_id = body.get("responsible_staff_id")
    if staff_id is not None and (
        not isinstance(staff_id, int) or isinstance(staff_id, bool) or not 1 <= staff_id <= MAX_ID
    ):
        raise _bad("responsible_staff_id", "must be a staff member's id")
    return MatterInput(reference, title, matter_type, staff_id, frozenset(body))


def new_matter_reference() -> str:
    """A random reference "ABCD1234" (collisions are checked by the caller)."""
    letters = "".join(secrets.choice(string.ascii_uppercase) for _ in range(4))
    return f"{letters}{secrets.randbelow(10_000):04d}"


async def _reference_taken(session: AsyncSession, reference: str) -> bool:
    found = await session.execute(select(Matter.id).where(Matter.reference == reference))
    return found.scalar_one_or_none() is not None


async def _check_staff(session: AsyncSession, firm_id: int, staff_id: int | None) -> None:
    if staff_id is None:
        return
    user = await session.get(StaffUser, staff_id)
    if user is None or user.firm_id != firm_id or user.role == "bot":
        raise _bad("responsible_staff_id", "no such staff member")


async def create_matter(session: AsyncSession, firm_id: int, data: MatterInput) -> Matter:
    """A new matter; ``Conflict`` when the given reference is taken (by any firm)."""
    await _check_staff(session, firm_id, data.responsible_staff_id)
    reference = data.reference
    if reference is not None and await _reference_taken(session, reference):
        raise Conflict("a matter with this reference exists", field="reference")
    while reference is None:
        candidate = new_matter_reference()
        if not await _reference_taken(session, candidate):
            reference = candidate
    assert data.title is not None
    matter = Matter(
        firm_id=firm_id,
        reference=reference,
        title=data.title,
        matter_type=data.matter_type,
        responsible_staff_id=data.responsible_staff_id,
        last_seq=0,
    )
    session.add(matter)
    await session.flush()
    return matter


async def update_matter(session: AsyncSession, matter: Matter, data: MatterInput) -> None:
    if "title" in data.given and data.title is not None:
        matter.title = data.title
    if "matter_type" in data.given:
        matter.matter_type = data.matter_type
    if "responsible_staff_id" in data.given:
        await _check_staff(session, matter.firm_id, data.responsible_staff_id)
        matter.responsible_staff_id = data.responsible_staff_id
    await session.flush()


async def get_contact(session: AsyncSession, firm_id: int, contact_id: object) -> Contact:
    """The firm's contact ``contact_id``; ``NotFound`` for another firm's, a missing
    one and a malformed id alike."""
    if not isinstance(contact_id, int) or isinstance(contact_id, bool):
        raise NotFound("no such contact")
    if not 1 <= contact_id <= MAX_ID:
        raise NotFound("no such contact")
    contact = await session.get(Contact, contact_id)
    if contact is None or contact.firm_id != firm_id:
        raise NotFound("no such contact")
    return contact


async def _replace_lists(session: AsyncSession, contact_id: int, data: ContactInput) -> None:
    if data.emails is not None:
        await session.execute(delete(ContactEmail).where(ContactEmail.contact_id == contact_id))
        await session.flush()
        for position, address in enumerate(data.emails):
            session.add(ContactEmail(contact_id=contact_id, address=address, position=position))
    if data.phones is not None:
        await session.execute(delete(ContactPhone).where(ContactPhone.contact_id == contact_id))
        await session.flush()
        for position, phone in enumerate(data.phones):
            session.add(
                ContactPhone(
                    contact_id=contact_id,
                    number=phone.number,
                    personal_mobile=phone.personal_mobile,
                    position=position,
                )
            )
    await session.flush()


async def create_contact(session: AsyncSession, firm_id: int, data: ContactInput) -> Contact:
    assert data.name is not None
    contact = Contact(firm_id=firm_id, display_name=data.name)
    session.add(contact)
    await session.flush()
    await _replace_lists(session, contact.id, data)
    return contact


async def update_contact(session: AsyncSession, contact: Contact, data: ContactInput) -> None:
    if data.name is not None:
        contact.display_name = data.name
    await _replace_lists(session, contact.id, data)


async def _emails_of(session: AsyncSession, contact_id: int) -> list[str]:
    rows = await session.execute(
        select(ContactEmail.address)
        .where(ContactEmail.contact_id == contact_id)
        .order_by(ContactEmail.position, ContactEmail.id)
    )
    return [str(a) for a in rows.scalars()]


async def _phones_of(session: AsyncSession, contact_id: int) -> list[ContactPhone]:
    rows = await session.execute(
        select(ContactPhone)
        .where(ContactPhone.contact_id == contact_id)
        .order_by(ContactPhone.position, ContactPhone.id)
    )
    return list(rows.scalars())


async def primary_email(session: AsyncSession, contact_id: int) -> str | None:
    """The contact's first email address, if any."""
    emails = await _emails_of(session, contact_id)
    return emails[0] if emails else None


async def primary_mobile(session: AsyncSession, contact_id: int) -> str | None:
    """The contact's first number marked personal mobile (the only kind SMS goes to)."""
    for phone in await _phones_of(session, contact_id):
        if phone.personal_mobile:
            return phone.number
    return None


async def contact_body(session: AsyncSession, contact: Contact) -> dict[str, Any]:
    """A contact as staff see it."""
    return {
        "id": contact.id,
        "name": contact.display_name,
        "emails": await _emails_of(session, contact.id),
        "phones": [
            {"number": p.number, "personal_mobile": p.personal_mobile}
            for p in await _phones_of(session, contact.id)
        ],
    }


async def find_contacts(
    session: AsyncSession, firm_id: int, query: str, limit: int, after: int
) -> list[Contact]:
    """The firm's contacts whose name or an email address contains ``query``
    (case-insensitive), by id after ``after``, at most ``limit``."""
    statement = select(Contact).where(Contact.firm_id == firm_id, Contact.id > after)
    if query:
        like = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like += "%"
        by_email = select(ContactEmail.id).where(
            ContactEmail.contact_id == Contact.id, ContactEmail.address.like(like, escape="\\")
        )
        statement = statement.where(
            or_(func.lower(Contact.display_name).like(like, escape="\\"), by_email.exists())
        )
    result = await session.execute(statement.order_by(Contact.id).limit(limit))
    return list(result.scalars())


async def applicants_of(session: AsyncSession, matter_id: int) -> list[Contact]:
    """The matter's applicants, in the order they were linked."""
    rows = await session.execute(
        select(Contact)
        .join(MatterApplicant, MatterApplicant.contact_id == Contact.id)
        .where(MatterApplicant.matter_id == matter_id)
        .order_by(MatterApplicant.id)
    )
    return list(rows.scalars())


async def link_applicant(session: AsyncSession, matter: Matter, contact: Contact) -> bool:
    """Link ``contact`` to ``matter`` as an applicant; ``False`` if it already was."""
    found = await session.execute(
        select(MatterApplicant.id).where(
            MatterApplicant.matter_id == matter.id, MatterApplicant.contact_id == contact.id
        )
    )
    if found.scalar_one_or_none() is not None:
        return False
    session.add(MatterApplicant(matter_id=matter.id, contact_id=contact.id))
    await session.flush()
    return True


async def unlink_applicant(session: AsyncSession, matter: Matter, contact: Contact) -> bool:
    """Unlink an applicant (their portal invite, if any, is untouched: remove it
    separately); ``False`` if it was not linked."""
    result = await session.execute(
        delete(MatterApplicant).where(
            MatterApplicant.matter_id == matter.id, MatterApplicant.contact_id == contact.id
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]

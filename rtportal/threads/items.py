"""Thread items before the write: the rules of docs/threads.md, and the fields the server sets.

The group commit hands every batch of sends here before its write
(``rtportal.events.groupcommit.Prepare``), in one read. For ``message``
and ``note`` sends (items): a thread is found through migration 0010's
index (``sql.thread_expr``): its opener is the thread's first ``message``
or ``note``, or the ``welcome`` event of a ``welcome-<n>`` thread. A send
without a found thread opens one (a ``parent`` then is ``no_such_thread``);
a send into a found thread is a reply. The server sets ``item``
(``<sender rtp1 id>.<client id>``), a reply's ``parent`` (the opener's
item; in a welcome thread its thread id) and ``to`` (a staff opener names
client members of the matter; a client's opener is addressed to that
client; a reply copies the opener's). For ``edit`` and ``delete``: the item
(found by its idempotency key, which its id spells) must be in the matter
and seen by the writer; the server sets ``thread``, ``to`` and the
audience from it. Sends of one batch are considered in order: an opener
and its reply, or an item and its edit, may share a batch.

Every value the server sets follows from the send and the stored opener
(which never changes), so a retried send is the same content and its
idempotency key finds the stored event.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access.membership import live
from rtportal.db.models import Matter, MatterMember, utcnow
from rtportal.errors import BadRequest, Forbidden, NotFound, RtPortalError
from rtportal.events.guards import MISSING, Guards
from rtportal.events.send import Send
from rtportal.events.validate import valid_thread
from rtportal.keys import ids
from rtportal.principal import Principal
from rtportal.threads.found import (
    ITEM_SEND_KINDS,
    WELCOME_PREFIX,
    Found,
    find_item,
    find_opener,
    find_openers,
    to_ids,
)
from rtportal.threads.openers import OpenerCache

__all__ = [
    "ACT_KINDS",
    "ITEM_SEND_KINDS",
    "Found",
    "Preparer",
    "find_item",
    "find_opener",
    "item_id",
    "prepare_sends",
]

ACT_KINDS = frozenset({"edit", "delete"})  # written by rtportal.threads.acts


def item_id(principal: Principal, client_id: str) -> str:
    """The id of the item ``principal`` sends with ``client_id``."""
    return f"{ids.of(principal)}.{client_id}"


_MEMBERS = MatterMember.__table__.c
# Built once (bound ``ids`` and ``now``): it runs once per group-commit batch, and
# building an ORM select each time cost more than running it.
_CLIENT_MEMBERS = select(_MEMBERS.matter_id, _MEMBERS.principal_id, _MEMBERS.see_applicants).where(
    _MEMBERS.matter_id.in_(bindparam("ids", expanding=True)),
    _MEMBERS.principal_kind == "contact",
    live(bindparam("now", type_=_MEMBERS.expires_at.type)),
)


async def _client_members(
    session: AsyncSession, matter_ids: set[int]
) -> dict[int, dict[int, bool]]:
    """Per matter: its live client members and their ``see_applicants``."""
    if not matter_ids:
        return {}
    rows = await session.execute(_CLIENT_MEMBERS, {"ids": sorted(matter_ids), "now": utcnow()})
    out: dict[int, dict[int, bool]] = {m: {} for m in matter_ids}
    for matter_id, contact_id, sees in rows.all():
        out[int(matter_id)][int(contact_id)] = bool(sees)
    return out


_MEMBERS_FACT = "client_members"  # a matter's {contact id: see_applicants}, never changed in place


class _Batch:
    """What one batch's prepare has read and made so far (openers and items by key)."""

    def __init__(
        self,
        session: AsyncSession,
        matter_ids: set[int],
        openers: OpenerCache | None,
        guards: Guards | None = None,
    ) -> None:
        self.session = session
        self.matter_ids = matter_ids
        self.guards = guards
        # the batch's matters' client members: read once, when a send first needs
        # them (a reply in a thread addressed to its sender never does)
        self.members: dict[int, dict[int, bool]] | None = None
        self.openers = openers
        # this batch's: read here, or made by an opener earlier in the batch
        # (not committed yet: never into ``openers``)
        self.threads: dict[tuple[int, str], Found | None] = {}
        self.items: dict[tuple[int, str], Found | None] = {}

    async def opener(self, matter_id: int, thread: str) -> Found | None:
        key = (matter_id, thread)
        if key not in self.threads:
            kept = self.openers.get(matter_id, thread) if self.openers is not None else None
            if kept is None:
                kept = await find_opener(self.session, matter_id, thread)
                if self.openers is not None:
                    self.openers.keep(matter_id, thread, kept)
            self.threads[key] = kept
        return self.threads[key]

    async def prefetch(self, keys: Sequence[tuple[int, str]]) -> None:
        """Read the openers of the batch's threads the worker does not know, at once
        (``find_openers``); a welcome thread's is read when needed, as it changes."""
        cached = self.openers
        wanted = sorted(
            {
                key
                for key in keys
                if not key[1].startswith(WELCOME_PREFIX)
                and key not in self.threads
                and (cached is None or cached.get(*key) is None)
            }
        )
        if len(wanted) < 2:
            return  # one: ``opener`` reads it with the same statement
        found = await find_openers(self.session, wanted)
        for key in wanted:
            kept = found.get(key)
            if cached is not None:
                cached.keep(key[0], key[1], kept)
            self.threads[key] = kept

    async def item(self, matter_id: int, item: str) -> Found | None:
        key = (matter_id, item)
        if key not in self.items:
            self.items[key] = await find_item(self.session, matter_id, item)
        return self.items[key]

    def remember(self, matter_id: int, principal: Principal, send: Send) -> None:
        item, thread = send.payload["item"], send.payload["thread"]
        to = to_ids(send.payload.get("to"))
        found = Found(send.kind, item, thread, send.audience, to, _key(principal))
        self.items[(matter_id, item)] = found

    async def members_of(self, matter_id: int) -> dict[int, bool]:
        """The matter's live client members and their ``see_applicants``."""
        if self.members is None:
            self.members = await self._read_members()
        return self.members.get(matter_id, {})

    async def _read_members(self) -> dict[int, dict[int, bool]]:
        """All the batch's matters' members: those the worker remembers at their
        current version (``guards``), the others read (and remembered)."""
        guards = self.guards
        if guards is None:
            return await _client_members(self.session, self.matter_ids)
        now = utcnow()
        await guards.ensure(self.session, self.matter_ids, now)  # versions before facts
        out: dict[int, dict[int, bool]] = {}
        for matter_id in self.matter_ids:
            known = guards.fact(matter_id, _MEMBERS_FACT, now)
            if known is not MISSING:
                out[matter_id] = known
        unknown = self.matter_ids - out.keys()
        if unknown:
            read = await _client_members(self.session, unknown)
            for matter_id, members in read.items():
                guards.remember(matter_id, _MEMBERS_FACT, members)
            out.update(read)
        return out

    async def sees(self, principal: Principal, found: Found, matter_id: int) -> bool:
        """Does ``principal`` see the thread or item ``found``?"""
        if principal.is_staff or found.seen_by(principal, False):
            return True  # without reading who sees applicants
        return found.seen_by(principal, (await self.members_of(matter_id)).get(principal.id, False))


def _no_thread() -> NotFound:
    return NotFound("no such thread", reason="no_such_thread")


def _bad_thread_id() -> BadRequest:
    return BadRequest(
        "payload.thread: 1-64 of A-Z a-z 0-9 _ -", field="payload.thread", reason="thread_id"
    )


def _no_item() -> NotFound:
    return NotFound("no such item", reason="no_such_item")


def _set(send: Send, audience: str | None = None, **fields: Any) -> Send:
    payload = dict(send.payload)
    for key, value in fields.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    # The constructor, not ``dataclasses.replace``: this runs for every item
    # sent, and ``replace`` inspects the fields on each call.
    return Send(
        matter=send.matter,
        kind=send.kind,
        audience=audience or send.audience,
        payload=payload,
        blob=send.blob,
        client_id=send.client_id,
    )


_REASONS = {
    "to": "thread_recipients",
    "parent": "thread_parent",
    "item": "item_id",
    "thread": "item_thread",
}


def _server_field(send: Send, name: str, value: Any) -> None:
    """A field the server sets may be sent only with the value the server sets."""
    if name in send.payload and send.payload[name] != value:
        reason = _REASONS[name]
        where = f"payload.{name}"
        raise BadRequest(f"{where}: set by the server", field=where, reason=reason)


async def _item_send(b: _Batch, principal: Principal, matter: Matter, send: Send) -> Send:
    thread = send.payload.get("thread")
    if thread is None:
        raise BadRequest(
            "payload.thread is required", field="payload.thread", reason="thread_required"
        )
    if not isinstance(thread, str):
        return send  # validate refuses it with its own message
    if "\x00" in thread:
        # SQLite's JSON functions end a string at U+0000: the thread index would
        # file ``N1\x00`` under ``N1``, a thread this send was never checked
        # against (PostgreSQL cannot store it). Not an id (docs/threads.md "Ids").
        raise BadRequest("payload.thread: holds U+0000", field="payload.thread")
    if send.client_id is None:
        # A send without an id (an HTTP post that did not give one) is not
        # retry-safe, as it never was; its item still needs an id, which must
        # not be a seq (docs/threads.md "Ids"): a random one.
        send = replace(send, client_id="g" + secrets.token_urlsafe(12))
    assert send.client_id is not None
    item = item_id(principal, send.client_id)
    _server_field(send, "item", item)
    opener = await b.opener(matter.id, thread)
    if opener is None:
        if "parent" in send.payload:
            raise _no_thread()
        if not valid_thread(thread):
            # A new thread's id is one its readers can name in a path and a frame
            # (docs/threads.md "Ids"); threads stored before this rule keep theirs.
            raise _bad_thread_id()
        if thread.startswith(WELCOME_PREFIX):
            # The server names an invitee's first thread, and only its welcome opens
            # it: a client opening one would own a future invitee's welcome thread
            # (and the refusals of the ids taken would list who else was invited);
            # a staff or bot thread under the name of a coming invite (invite ids
            # are sequential) would take the invitee's replies to its recipients.
            # Taken or not: no such thread.
            raise _no_thread()
        if send.kind == "note":
            made = _set(send, item=item)
            opened = Found("note", item, thread, "staff", None, _key(principal))
            b.threads[(matter.id, thread)] = opened
            return made
        to = await _opener_to(b, principal, matter, send)
        made = _set(send, item=item, to=to)
        b.threads[(matter.id, thread)] = Found(
            "message", item, thread, "portal", tuple(to), _key(principal)
        )
        return made
    if opener.item == item:  # this send opened the thread: a retry of the opener
        return _retried_opener(principal, send, item, await b.members_of(matter.id))
    if not await b.sees(principal, opener, matter.id):
        # A thread this sender may not see does not exist for them: refused as a
        # free name would be (an odd one is ``thread_id``, a refusal that writes
        # nothing: telling it from ``no_such_thread`` would list the odd names taken).
        if "parent" not in send.payload and not valid_thread(thread):
            raise _bad_thread_id()
        raise _no_thread()
    _server_field(send, "parent", opener.item)
    if send.kind == "note":
        return _set(send, item=item, parent=opener.item)
    if opener.kind == "welcome" and not opener.replied:  # this reply opens it to co-applicants
        b.threads[(matter.id, thread)] = replace(opener, replied=True)
    if opener.kind == "note":
        raise BadRequest(
            "an internal thread takes notes only", field="payload.thread", reason="internal_thread"
        )
    if opener.to is None:  # a thread opened before threads had recipients
        # ... has none for a reply to name: ``to`` is what the visibility rule
        # reads, so a reply naming its own would reach whom the sender chose.
        _server_field(send, "to", None)
        return _set(send, item=item, parent=opener.item)
    to = list(opener.to)
    _server_field(send, "to", to)
    return _set(send, item=item, parent=opener.item, to=to)


def _retried_opener(principal: Principal, send: Send, item: str, members: dict[int, bool]) -> Send:
    """The opener again, prepared as it was (whatever changed since: the log's
    idempotency then answers with the stored event, or ``conflict``)."""
    if send.kind == "note":
        return _set(send, item=item)
    to = send.payload.get("to")
    if principal.kind == "contact":
        to = [principal.id] if to is None else to
    elif to is None:
        to = sorted(members)
    elif isinstance(to, list) and all(type(c) is int for c in to):
        to = sorted(to)
    return _set(send, item=item, to=to)


def _key(principal: Principal) -> tuple[str, int]:
    return (principal.kind, principal.id)


async def _opener_to(b: _Batch, principal: Principal, matter: Matter, send: Send) -> list[int]:
    to = send.payload.get("to")
    if principal.kind == "contact":
        if to is not None and to != [principal.id]:
            raise BadRequest(
                "a client's thread is addressed to that client",
                field="payload.to",
                reason="thread_recipients",
            )
        return [principal.id]
    members = await b.members_of(matter.id)
    if to is None:
        # No recipients named: the thread is addressed to every client member
        # (what a message to "the portal" meant before threads had recipients).
        return sorted(members)
    if (
        not isinstance(to, list)
        or not to
        or len(to) != len(set(to))
        or not all(type(c) is int and c in members for c in to)
    ):
        raise BadRequest(
            "a new client thread names its recipients: client members of the matter",
            field="payload.to",
            reason="thread_recipients",
        )
    return sorted(to)


async def _act_send(b: _Batch, principal: Principal, matter: Matter, send: Send) -> Send:
    item_ref = send.payload.get("item")
    if not isinstance(item_ref, str):
        return send  # validate refuses it (item required)
    if send.client_id is None:
        raise BadRequest("an edit or delete needs a client id", reason="client_id_required")
    found = await b.item(matter.id, item_ref)
    if found is None or not await b.sees(principal, found, matter.id):
        raise _no_item()
    sender = found.actor == _key(principal)
    if send.kind == "edit" and not sender:
        raise Forbidden("only the item's sender may edit it", reason="not_sender")
    if send.kind == "delete" and not sender and principal.kind != "staff":
        raise Forbidden("only the item's sender or staff may delete it", reason="not_sender")
    _server_field(send, "thread", found.thread)
    to = list(found.to) if found.to is not None and found.audience == "portal" else None
    if to is not None and "to" in send.payload:
        _server_field(send, "to", to)
    return _set(send, audience=found.audience, thread=found.thread, to=to)


async def prepare_sends(
    session: AsyncSession,
    items: Sequence[tuple[Principal, Matter, Send]],
    openers: OpenerCache | None = None,
    guards: Guards | None = None,
) -> list[Send | RtPortalError]:
    """Each send as it will be written (server fields set) or its refusal, in order.

    The group commit's ``Prepare`` (``Preparer``: with the worker's ``openers``);
    sends of other kinds pass unchanged.
    """
    out: list[Send | RtPortalError] = [send for _, _, send in items]
    todo = [i for i, (_, _, s) in enumerate(items) if s.kind in ITEM_SEND_KINDS | ACT_KINDS]
    if not todo:
        return out
    batch = _Batch(session, {items[i][1].id for i in todo}, openers, guards)
    await batch.prefetch(
        [
            (matter.id, send.payload["thread"])
            for principal, matter, send in (items[i] for i in todo)
            if send.kind in ITEM_SEND_KINDS
            and isinstance(send.payload, dict)
            and isinstance(send.payload.get("thread"), str)
        ]
    )
    for i in todo:
        principal, matter, send = items[i]
        if not isinstance(send.payload, dict):
            continue  # validate refuses it
        try:
            if send.kind in ITEM_SEND_KINDS:
                if send.kind == "note" and not principal.is_staff:
                    continue  # validate refuses a client's note
                made = await _item_send(batch, principal, matter, send)
                if made is not send:  # an item of this batch: its edit may follow
                    batch.remember(matter.id, principal, made)
            else:
                made = await _act_send(batch, principal, matter, send)
            out[i] = made
        except RtPortalError as err:
            out[i] = err
    return out


class Preparer:
    """``prepare_sends`` with one worker's ``OpenerCache`` and ``Guards`` (the group
    commit's ``Prepare``; the same ``Guards`` as the group commit's)."""

    def __init__(self, openers: OpenerCache | None = None, guards: Guards | None = None) -> None:
        self.openers = openers if openers is not None else OpenerCache()
        self.guards = guards

    async def __call__(
        self, session: AsyncSession, items: Sequence[tuple[Principal, Matter, Send]], /
    ) -> list[Send | RtPortalError]:
        return await prepare_sends(session, items, self.openers, self.guards)

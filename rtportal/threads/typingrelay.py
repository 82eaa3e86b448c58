"""Typing indicators: relayed live, never stored (docs/threads.md).

``relay_typing`` checks that the typist sees the matter and the thread
(``not_found`` otherwise) and publishes one ``typing`` frame on the
matter's topic for the connections that see the thread, never the
typist's own. Typing in an internal thread, or with ``internal`` (a note's
composer inside a client thread), reaches staff and bots only; typing in a
client thread also reaches the contacts who see it and may know of the
typist (``rtportal.threads.readers``). Nothing is written: no event, no
row, no backlog. The rate (one per 3 s per connection and thread) is the
websocket protocol's (``rtportal.ws.threadproto``).
"""

from __future__ import annotations

from rtportal.db import Database
from rtportal.errors import BadRequest
from rtportal.principal import Principal
from rtportal.realtime.message import Ephemeral
from rtportal.threads.liveframes import PublishEphemeral, new_id, publish, typing_frame
from rtportal.threads.readers import client_members, client_viewers
from rtportal.threads.reads import visible_thread

__all__ = ["relay_typing"]


async def relay_typing(
    db: Database,
    send: PublishEphemeral | None,
    principal: Principal,
    ref: str,
    thread: str,
    internal: bool,
) -> None:
    """Tell the thread's other viewers that ``principal`` is typing in it."""
    if internal and not principal.is_staff:
        raise BadRequest("internal: only staff write notes")
    async with db.read() as session:
        matter, reader, info = await visible_thread(session, principal, ref, thread)
        staff_only = internal or info.internal
        contacts: frozenset[int] = frozenset()
        if not staff_only:
            members = await client_members(session, matter.id)
            contacts = client_viewers(members, info, about=principal)
    frame = typing_frame(matter.reference, thread, reader.id, principal.display_name, staff_only)
    msg = Ephemeral(
        new_id(),
        matter.id,
        matter.reference,
        frame,
        staff=True,
        contacts=contacts,
        skip_user=(principal.kind, principal.id),
    )
    await publish(send, msg)

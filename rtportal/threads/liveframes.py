"""The live frames of the read side (protocol v2): ``receipt``, ``typing``, ``unread``.

Each is built once by its publisher and relayed as it is to every
connection the hub's ephemeral plane lets it reach
(``rtportal.realtime.message.Ephemeral``): what a frame says must already
be fit for every receiver the publisher named.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from rtportal import wirejson
from rtportal.realtime.message import Ephemeral

__all__ = ["PublishEphemeral", "new_id", "publish", "receipt_frame", "typing_frame", "unread_frame"]

log = logging.getLogger("rtportal.threads")

PublishEphemeral = Callable[[Ephemeral], Awaitable[None]]
"""``Hub.publish_ephemeral``: deliver to the matter's connections on every worker."""


def new_id() -> str:
    """The id of one ephemeral message (a worker skips the echo of its own)."""
    return uuid.uuid4().hex


async def publish(send: PublishEphemeral | None, msg: Ephemeral) -> None:
    """Publish after the commit; a failure is logged (the state is in the database)."""
    if send is None:
        return
    try:
        await send(msg)
    except Exception:
        log.exception("publishing an ephemeral %s frame failed", msg.frame[:24])


def receipt_frame(matter: str, thread: str, reader: str, name: str, upto: object) -> str:
    return wirejson.dumps(
        {
            "type": "receipt",
            "matter": matter,
            "thread": thread,
            "reader": reader,
            "name": name,
            "upto": upto,
        }
    )


def typing_frame(matter: str, thread: str, who: str, name: str, internal: bool) -> str:
    body: dict[str, object] = {
        "type": "typing",
        "matter": matter,
        "thread": thread,
        "who": who,
        "name": name,
    }
    if internal:
        body["internal"] = True  # a note's composer: only ever sent to staff
    return wirejson.dumps(body)


def unread_frame(matter: str, thread: str, unread: int, matter_unread: int) -> str:
    return wirejson.dumps(
        {
            "type": "unread",
            "matter": matter,
            "thread": thread,
            "unread": unread,
            "matter_unread": matter_unread,
        }
    )

"""Ephemeral messages (receipts, typing, unread) through the hub on every broker backend.

Two hubs sharing one bus act as two workers (tests/test_hub.py): a message
published on one reaches the matter's listeners on both, exactly once (the
publisher skips its own echo), never the listeners of another matter, and
nothing is stored. Negative checks use a barrier message published later.
"""

from __future__ import annotations

from rtportal.db import Database
from rtportal.events import log as stream
from rtportal.principal import Principal
from rtportal.realtime.message import (
    EPHEMERAL_PREFIX,
    Ephemeral,
    encode_ephemeral,
    matter_topic,
)
from tests.conftest import MakeFirm
from tests.test_hub import MakeHub, Rec, bus_url, make_hub  # noqa: F401 (fixtures)


class EphemeralRec(Rec):
    """A listener that also takes ephemeral frames (as a websocket connection does)."""

    def __init__(self, principal: Principal) -> None:
        super().__init__(principal)
        self.ephemerals: list[str] = []

    def ephemeral(self, msg: Ephemeral) -> None:
        self.ephemerals.append(msg.frame)
        self._changed.set()


def msg(matter_id: int, ref: str, frame: str) -> Ephemeral:
    return Ephemeral(f"id-{frame}", matter_id, ref, frame, contacts=frozenset({7}))


async def test_an_ephemeral_message_reaches_every_worker_once_and_is_never_stored(
    make_hub: MakeHub,  # noqa: F811
    make_firm: MakeFirm,
    db: Database,
) -> None:
    kit = await make_firm()
    other = await kit.add_matter(title="Other")
    one, _ = await make_hub()
    two, broker_two = await make_hub()
    staff = EphemeralRec(kit.staff)
    here, there, elsewhere = (
        EphemeralRec(kit.contact),
        EphemeralRec(kit.contact),
        EphemeralRec(kit.staff),
    )
    events_only = Rec(kit.staff)  # a listener without ``ephemeral``: skipped, not failed
    await one.join(kit.matter.id, staff)
    await one.join(kit.matter.id, events_only)
    await two.join(kit.matter.id, here)
    await two.join(kit.matter.id, there)
    await two.join(other.id, elsewhere)
    await one.publish_ephemeral(msg(kit.matter.id, kit.ref, "first"))
    # Malformed and misrouted messages on the topic are dropped by the receiving hub.
    await broker_two.publish(matter_topic(kit.matter.id), EPHEMERAL_PREFIX + b"{}")
    wrong = Ephemeral("x", other.id, other.reference, "misrouted")
    await broker_two.publish(matter_topic(kit.matter.id), encode_ephemeral(wrong))
    # One publisher keeps its order on the bus: "barrier" comes after "first" everywhere.
    await one.publish_ephemeral(msg(kit.matter.id, kit.ref, "barrier"))
    for rec in (staff, here, there):
        await rec.until(lambda rec=rec: "barrier" in rec.ephemerals)  # type: ignore[misc]
        assert rec.ephemerals == ["first", "barrier"]
    # Published after two saw "barrier": on one it comes after the echoes of one's own
    # messages, which are skipped (no duplicate).
    await two.publish_ephemeral(msg(kit.matter.id, kit.ref, "barrier2"))
    await staff.until(lambda: "barrier2" in staff.ephemerals)
    assert staff.ephemerals == ["first", "barrier", "barrier2"]
    await one.publish_ephemeral(msg(other.id, other.reference, "other"))
    await elsewhere.until(lambda: elsewhere.ephemerals == ["other"])
    assert events_only.events == [] and events_only.closed == []
    async with db.read() as session:
        assert await stream.head(session, kit.matter.id) == 0

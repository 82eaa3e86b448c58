"""A client's history filtered in the database agrees with ``view_for`` on every event.

``rtportal.events.visiblesql.client_sees`` decides which events a client's
history page holds (so its size and ``more`` never count staff-only events);
``rtportal.events.audience.view_for`` builds each view. Over a matter with
every kind of event a client may or may not see, for a client who sees the
other applicants and one who does not, both must pick the same events.
"""

from __future__ import annotations

from rtportal.events import log as stream
from rtportal.events.audience import view_for
from rtportal.events.unit import Unit
from tests.conftest import FirmKit, MakeFirm
from tests.support.threadworld import add_applicant, put_item, put_welcome


async def _system(kit: FirmKit, kind: str, audience: str, payload: dict[str, object]) -> None:
    async with Unit(kit.db, None, kit.settings) as unit:
        await unit.append(
            matter=kit.matter, actor=kit.staff, kind=kind, audience=audience,
            payload=payload, system=True,
        )  # fmt: skip


async def test_the_sql_rule_and_view_for_pick_the_same_events(make_firm: MakeFirm) -> None:
    kit = await make_firm()
    ann = (await add_applicant(kit, "Ann Applicant", sees=False))[0]
    bob = (await add_applicant(kit, "Bob Applicant", sees=True))[0]
    m = kit.matter
    await put_welcome(kit.db, m, kit.staff, ann.id)
    await put_welcome(kit.db, m, kit.staff, bob.id)
    await put_item(kit.db, m, kit.staff, "to-ann", to=(ann.id,))
    await put_item(kit.db, m, kit.staff, "to-bob", to=(bob.id,))
    await put_item(kit.db, m, kit.staff, "to-both", to=(ann.id, bob.id))
    await put_item(kit.db, m, bob, "bobs-own", to=(bob.id,))
    await put_item(kit.db, m, ann, "legacy")  # from before recipients: no ``to``
    await put_item(kit.db, m, kit.staff, "legacy")
    await put_item(kit.db, m, kit.staff, "to-bob", kind="note")
    await put_item(kit.db, m, kit.staff, "int", kind="note")
    await _system(kit, "keys", "portal", {"what": "epoch", "epoch": 1})
    await _system(kit, "keys", "staff", {"what": "escrow", "version": 1})
    await _system(kit, "phase", "staff", {"phase": 1, "name": "Lodged"})
    await _system(
        kit, "document", "portal", {"action": "requested", "items": ["A" * 22], "to": [ann.id]}
    )
    await _system(
        kit, "document", "portal", {"action": "requested", "items": ["B" * 22], "to": [bob.id]}
    )
    await _system(kit, "document_shared", "portal", {"items": ["C" * 22]})
    async with kit.db.read() as session:
        everything = await stream.read_since(session, m.id, 0, 1000)
        for who, sees in ((ann, False), (bob, True), (kit.contact, True), (kit.contact, False)):
            expected = [e.seq for e in everything if view_for(e, who, sees) is not None]
            got = await stream.read_since(session, m.id, 0, 1000, None, (who.id, sees))
            assert [e.seq for e in got] == expected, (who.display_name, sees)
            back = await stream.read_before(session, m.id, 10**6, 1000, 1 << 20, (who.id, sees))
            assert [e.seq for e in back] == expected
            assert 0 < len(expected) < len(everything)
    # the rule is not trivially everything: Ann sees less than Bob
    async with kit.db.read() as session:
        ann_sees = await stream.read_since(session, m.id, 0, 1000, None, (ann.id, False))
        bob_sees = await stream.read_since(session, m.id, 0, 1000, None, (bob.id, True))
    assert len(ann_sees) < len(bob_sees)

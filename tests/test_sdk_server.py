"""The Python client against the real server: every flow of docs/keys.md, end to end.

A real uvicorn serves the app on the test backend (SQLite, or PostgreSQL +
Redis); the firm's keys are set up, staff approved, clients invited,
removed and regenerated through ``rtportal.sdk`` only. The last test is
the dump canary: unique plaintexts driven through the server are found
nowhere in the database dump or the server's log.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from pathlib import Path

import pyotp
import pytest

from rtportal import base64url
from rtportal.cli import main
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import Body
from rtportal.crypto.errors import WrongContext
from rtportal.db.models import Firm
from rtportal.demo import create_staff
from rtportal.errors import CryptoInvalid
from rtportal.sdk import epochs, messages, sync
from rtportal.sdk.errors import ApiError
from rtportal.sdk.invitekeys import parse_accept_fragment
from rtportal.sdk.keyfile import encode_key_file
from tests.conftest import MakeFirm
from tests.support.canary import canary, log_lines, needles, search  # noqa: F401
from tests.support.logins import give_password, staff_email
from tests.support.sdkworld import SdkWorld, sdk_world
from tests.support.server import RunningServer

pytestmark = pytest.mark.timeout(300)


async def test_invite_accept_reply_new_device_and_the_dump_canary(
    log_lines: list[str],  # noqa: F811 - first: the log from the server's start
    uvicorn_server: RunningServer,
    make_firm: MakeFirm,
    tmp_path: Path,
) -> None:
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        matter = await w.matter("Partner visa")
        ref = matter.reference
        subject, text = canary("subject"), canary("welcome")
        password = canary("client-password")
        cleo, _, client, link = await w.accepted(matter, "Cleo", (subject, text), password)
        secret = parse_accept_fragment(link)[1]
        # accepted with no staff online: the welcome opens with the link's key alone
        [welcome] = await client.read(ref)
        thread = f"welcome-{cleo.id}"
        assert (welcome.thread, welcome.body.subject, welcome.body.text) == (thread, subject, text)
        assert welcome.sender == f"s{kit.staff.id}"
        reply = canary("reply")
        await client.send(ref, thread=thread, text=reply)
        staff_view = await w.staff.read(ref)
        assert [(i.sender, i.body.text) for i in staff_view] == [
            (f"s{kit.staff.id}", text),
            (f"c{cleo.id}", reply),
        ]
        note = canary("note")
        await w.staff.send(ref, thread=thread, text=note, staff_only=True)
        assert [i.body.text for i in await w.admin.read(ref)] == [text, reply, note]
        assert [i.body.text for i in await client.read(ref)] == [text, reply]  # no note

        # a new device: the password alone unlocks everything (backup -> identity, FRK pin)
        staff_email_ = await staff_email(kit.db, kit.staff.id)
        device = await w.client("staff-device")
        await device.sign_in(staff_email_, w.passwords["staff"])
        assert [i.body.text for i in await device.read(ref)] == [text, reply, note]

        # the dump canary: none of the plaintexts or secrets is stored or logged
        secrets_ = [subject, text, reply, note, password, *w.passwords.values()]
        await assert_nowhere(w, log_lines, secrets_, [secret])


async def assert_nowhere(w: SdkWorld, log: list[str], texts: list[str], raw: list[bytes]) -> None:
    url, files = w.kit.settings.database_url, w.kit.settings.files_dir
    # the searches see what is there: stored metadata, and the server's log lines
    [db, *_] = await search(url, files, log, [w.kit.name.encode()])
    assert db.hits == 1 and log
    stacks = await search(url, files, log, needles(texts, raw))
    assert [(s.what, s.hits) for s in stacks] == [(s.what, 0) for s in stacks]


async def test_removal_moves_the_matter_on(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        matter = await w.matter("Skilled visa")
        ref = matter.reference
        cleo, invite_id, client, _ = await w.accepted(
            matter, "Cleo", ("Welcome", "hello"), "cleo password 1"
        )
        dan, _, dan_client, _ = await w.accepted(
            matter, "Dan", ("Welcome", "hello Dan"), "dan password 1"
        )
        stale = await client.sync([ref])
        dan_stale = await dan_client.sync([ref])
        before = stale.current_epoch(ref)
        await w.staff.remove(ref, invite_id=invite_id, contact_id=cleo.id)
        after = (await w.staff.sync([ref])).current_epoch(ref)
        assert after == before + 1
        news = canary("after-removal")
        await w.staff.send(ref, thread="t", text=news, to=[dan.id])

        # the removed client: no session, no new key; what they hold opens nothing new
        with pytest.raises(ApiError):
            await client.read(ref)
        page = await w.staff.http.call("GET", f"/api/v1/matters/{ref}/events", after=0)
        with pytest.raises(WrongContext):
            messages.open_event(
                stale, client.state.matter(ref), page["events"][-1], w.admin.clock()
            )

        # a write under the old epoch: refused by the server ...
        env = messages.seal(
            dan_stale,
            dan_client.actor,
            matter=ref,
            thread="t",
            body=Body("", "old"),
            now_ms=w.admin.clock(),
        )
        with pytest.raises(ApiError) as refused:
            await dan_client.http.send_events([messages.outgoing(ref, "t", env)])
        assert refused.value.server_code == "stale_epoch"
        # ... and by readers, when a server stores the removed client's old-epoch post anyway
        late = messages.seal(
            stale,
            client.actor,
            matter=ref,
            thread="t",
            body=Body("", "late"),
            now_ms=w.admin.clock(),
        )
        await w.stored_anyway(matter, cleo, "t", late.encode())
        with pytest.raises(CryptoInvalid):
            await w.staff.read(ref)


async def test_a_removal_without_its_epoch_is_mended_by_the_next_staff_write(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        matter = await w.matter("Student visa")
        ref = matter.reference
        eve, invite_id, _, _ = await w.accepted(
            matter, "Eve", ("Welcome", "hello Eve"), "eve password 1"
        )
        before = (await w.staff.sync([ref])).current_epoch(ref)
        # The removal went through, its epoch did not (the staff member's client stopped):
        # the server refuses the next write (rekey_required, over the websocket), the
        # client posts the epoch without Eve and sends again.
        await w.staff.http.call("POST", f"/api/v1/invites/{invite_id}/remove", {})
        # (an internal note: no client member is left to address)
        await w.staff.send(ref, thread="t", text=canary("mended"), staff_only=True)
        d = await w.staff.sync([ref])
        assert d.current_epoch(ref) == before + 1
        assert f"c{eve.id}" not in {m.user for m in epochs.current_members(d, ref)}


async def test_staff_leaving_reads_nothing_new(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        quiet = await w.matter("Nobody writes here")
        await w.accepted(quiet, "Cleo", ("Welcome", "hello"), "cleo password 1")
        ref = quiet.reference
        # two staff make the same epoch: the loser gets epoch_conflict and re-bases
        stale = await w.staff.sync([ref])
        won = await w.admin.next_epoch_rebased(ref, w.admin._same_members(ref))
        bases: list[Directory] = []

        def make(d: Directory) -> epochs.EpochBundle:
            base = stale if not bases else d
            bases.append(d)
            members = epochs.current_members(base, ref)
            return epochs.next_epoch(
                base, w.staff.actor, matter=ref, members=members, now_ms=w.staff.clock()
            )

        rebased = await w.staff.next_epoch_rebased(ref, make)
        assert len(bases) == 2 and rebased.epoch == won.epoch + 1
        await w.staff.refresh_head(ref)
        assert [i.body.text for i in await w.admin.read(ref)] == ["hello"]
        sam_actor = w.staff.actor
        sam_state = w.staff.state
        moved = await w.admin.staff_leaves(w.frk, staff_id=kit.staff.id)
        assert quiet.reference in moved
        # Sam can no longer sign in ...
        with pytest.raises(ApiError):
            await w.staff.read(quiet.reference)
        # ... and the keys he took open nothing written after he left
        news = canary("after-leaving")
        await w.admin.send(quiet.reference, thread="t", text=news, staff_only=True)
        firm = await w.admin.http.call("GET", "/api/v1/keys/firm")
        data = await w.admin.http.call("GET", f"/api/v1/keys/matters/{quiet.reference}")
        now = w.admin.clock()
        d = sync.verify_firm(firm, sam_state, sam_actor, now)
        sync.verify_matter(d, data, sam_state, sam_actor, quiet.reference, now)
        page = await w.admin.http.call("GET", f"/api/v1/matters/{quiet.reference}/events", after=0)
        with pytest.raises(CryptoInvalid):
            messages.open_event(d, sam_state.matter(quiet.reference), page["events"][-1], now)
        assert set(w.admin.actor.firm_keys) == {1, 2}


async def test_portal_delivery_link_from_the_email_opens_the_welcome(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    """``delivery: portal``: the server mails the link with ``R`` in its fragment."""
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        matter = await w.matter("Visitor visa")
        eve = await w.contact("Eve", matter)
        [invited] = await w.admin.invite(
            matter.reference, [(eve.id, "Welcome", "hello Eve")], delivery="portal"
        )
        assert invited.link is None  # the server sends it
        outbox = await w.admin.http.call("GET", "/api/v1/outbox")
        bodies = [
            m["body"] or "" for m in outbox["messages"] if m["invite_id"] == invited.invite_id
        ]
        links = [x for b in bodies for x in re.findall(r"\S+#t=\S+", b)]
        assert len(links) == 1 and base64url.encode(invited.secret) in links[0]
        client = await w.client("eve")
        await client.accept_invite(links[0], "eve password 1")
        [welcome] = await client.read(matter.reference)
        assert welcome.body.text == "hello Eve"


async def test_firm_keys_approve_from_the_command_line(
    uvicorn_server: RunningServer,
    make_firm: MakeFirm,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new staff member registers a key; the org admin approves it with the key file."""
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        async with kit.db.write() as session:
            firm = await session.get(Firm, kit.firm_id)
            assert firm is not None
            newbie = await create_staff(
                session, firm, email=f"new{kit.firm_id}@firm.test", display_name="Nia"
            )
        await give_password(
            kit.db, kit.settings, newbie, f"new{kit.firm_id}@firm.test", "nia password 1"
        )
        nia = await w.client("nia")
        await nia.sign_in(f"new{kit.firm_id}@firm.test", "nia password 1")
        await nia.register_identity(frk_fingerprint=w.frk.public.fingerprint)
        key = tmp_path / "frk.key"
        key.write_bytes(encode_key_file(w.slug, w.frk))
        admin_email = await staff_email(kit.db, kit.admin.id)
        argv = ["firm-keys", "approve", "--url", uvicorn_server.base_url, "--firm", w.slug]
        argv += ["--email", admin_email, "--key", str(key), "--password-stdin"]
        argv += ["--totp", pyotp.TOTP(w.totp_secret).at(time.time() + 30)]
        argv += ["--state-dir", str(tmp_path / "cli-state")]
        monkeypatch.setenv("RTPORTAL_DATA_DIR", str(tmp_path / "cli-data"))
        monkeypatch.setattr("sys.stdin", io.StringIO(w.passwords["admin"] + "\n"))
        assert await asyncio.to_thread(main, argv) == 0
        await nia.sync()
        assert set(nia.actor.firm_keys) == {1}  # approved: the firm keys were wrapped to Nia

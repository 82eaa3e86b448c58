"""Regenerate login details (and resend) in an end-to-end encrypted firm, end to end.

docs/keys.md "Regenerate login details / lost password": the staff client
makes a new secret ``R'``, certifies the key it determines, moves the matter
to the next epoch with that key and without the old one, wraps the client's
history to it and revokes the old key, all in ``POST /invites/{id}/regenerate``
(or ``resend``) with the password cleared and the sessions ended in the same
transaction. Driven through ``rtportal.sdk`` against a real server (SQLite,
or PostgreSQL + Redis).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rtportal import base64url
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import CTYPE_BODY, Body
from rtportal.crypto.errors import Revoked
from rtportal.errors import CryptoInvalid
from rtportal.sdk import epochs, invitekeys, messages
from rtportal.sdk.errors import ApiError
from tests.conftest import MakeFirm
from tests.support.sdkworld import SdkWorld, sdk_world
from tests.support.server import RunningServer

pytestmark = pytest.mark.timeout(300)


def welcome(name: str) -> tuple[tuple[str, str], str]:
    return ("Welcome", f"hello {name}"), f"{name} password one"


async def test_regenerated_client_reads_history_and_the_old_key_is_revoked(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        matter = await w.matter("Partner visa")
        ref = matter.reference
        cleo, invite_id, old, _ = await w.accepted(matter, "Cleo", *welcome("Cleo"))
        thread = f"welcome-{cleo.id}"
        await old.send(ref, thread=thread, text="my passport scan")
        await w.staff.send(ref, thread=thread, text="thanks, received")
        old_actor = old.actor
        before = (await w.staff.sync([ref])).current_epoch(ref)

        # lost password: one request makes the new key, epoch, history, revocation, link
        invited = await w.staff.regenerate(ref, invite_id=invite_id, contact_id=cleo.id)
        assert invited.link is not None and invited.secret
        staff_view = await w.staff.sync([ref])
        assert staff_view.current_epoch(ref) == before + 1
        members = staff_view.manifest(ref, before + 1).members
        assert [m.kid for m in members if m.user == f"c{cleo.id}"] != [old_actor.kid]
        # the old device's session ended with the password
        with pytest.raises(ApiError) as gone:
            await old.read(ref)
        assert gone.value.status in (401, 403)

        # a new device with the new link: the whole history opens again
        new = await w.client("cleo-new-device")
        await new.accept_invite(invited.link, "Cleo password two")
        assert new.actor.kid != old_actor.kid
        history = [i.body.text for i in await new.read(ref)]
        assert history == ["hello Cleo", "my passport scan", "thanks, received"]
        await new.send(ref, thread=thread, text="the new key writes")
        assert [i.body.text for i in await w.admin.read(ref)][-1] == "the new key writes"
        d = await new.sync([ref])
        with pytest.raises(Revoked):  # revoked from its revoked_at on
            d.certificate(f"c{cleo.id}", old_actor.kid, new.clock())

        # the old key signs after its revocation: refused by the server ...
        forged = d.seal_message(
            old_actor.identity,
            sender_id=f"c{cleo.id}",
            matter=ref,
            thread=thread,
            plaintext=Body("", "from the lost laptop").encode(),
            ts_ms=new.clock(),
            ctype=CTYPE_BODY,
        )
        with pytest.raises(ApiError) as refused:
            await new.http.send_events([messages.outgoing(ref, thread, forged)])
        assert refused.value.server_code == "key_not_certified"
        # ... and by readers, when a server stores it anyway
        await w.stored_anyway(matter, cleo, thread, forged.encode())
        with pytest.raises(CryptoInvalid):
            await w.staff.read(ref)
        with pytest.raises(CryptoInvalid):
            await new.read(ref)


async def test_resend_of_a_pending_invite_makes_a_new_key(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        matter = await w.matter("Student visa")
        ref = matter.reference
        dan = await w.contact("Dan", matter)
        [first] = await w.staff.invite(ref, [(dan.id, "Welcome", "hello Dan")])
        again = await w.staff.resend(ref, invite_id=first.invite_id, contact_id=dan.id)
        assert again.link is not None and again.secret != first.secret
        stale = await w.client("dan-old-link")
        assert first.link is not None
        with pytest.raises(ApiError) as dead:  # the first link was replaced
            await stale.accept_invite(first.link, "Dan password one")
        assert dead.value.server_code == "invalid_link"
        client = await w.client("dan")
        await client.accept_invite(again.link, "Dan password one")
        assert [i.body.text for i in await client.read(ref)] == ["hello Dan"]
        # portal delivery: the server mails R' in the link's fragment
        resent = await w.staff.regenerate(
            ref, invite_id=first.invite_id, contact_id=dan.id, delivery="portal"
        )
        assert resent.link is None
        outbox = await w.admin.http.call("GET", "/api/v1/outbox")
        bodies = [m["body"] or "" for m in outbox["messages"] if m["invite_id"] == first.invite_id]
        assert any(base64url.encode(resent.secret) in b for b in bodies)


async def _raw(w: SdkWorld, invite_id: int, act: str, body: dict[str, Any]) -> tuple[int, str]:
    try:
        await w.staff.http.call("POST", f"/api/v1/invites/{invite_id}/{act}", body)
    except ApiError as err:
        return err.status, str(err.server_code) + ":" + str((err.details or {}).get("reason"))
    return 200, ""


async def test_the_server_refuses_an_incomplete_regeneration(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        matter = await w.matter("Work visa")
        ref = matter.reference
        await w.accepted(matter, "Dan", *welcome("Dan"))  # epoch 1: Dan alone
        eve, invite_id, _, _ = await w.accepted(matter, "Eve", *welcome("Eve"))  # epoch 2

        async def regeneration() -> tuple[invitekeys.Regeneration, Directory]:
            d = await w.staff.sync([ref])
            reg = invitekeys.regenerate(
                d, w.staff.actor, matter=ref, contact_id=eve.id, now_ms=w.staff.clock()
            )
            return reg, d

        assert (await _raw(w, invite_id, "regenerate", {}))[1].startswith("e2ee_required")
        reg, d = await regeneration()
        # without the revocation of the old key
        body = reg.crypto_body()
        body["revocations"] = []
        status, code = await _raw(w, invite_id, "regenerate", {"crypto": body})
        assert (status, code) == (400, "bad_request:old_key_not_revoked")
        # a history wrap of an epoch Eve was never in (epoch 1: Dan alone)
        reg, d = await regeneration()
        body = reg.crypto_body()
        extra = epochs.mek_wrap(
            d,
            w.staff.actor,
            ref,
            1,
            d.matter(ref).meks[1],
            reg.invitee.member,
            w.staff.clock(),
            w.staff.rng,
        )
        body["epoch"]["wraps"].append(base64url.encode(extra.encode()))  # type: ignore[index]
        status, code = await _raw(w, invite_id, "regenerate", {"crypto": body})
        assert (status, code) == (400, "bad_request:None")
        # nothing of either attempt was stored: the same epoch number is still free
        assert (await w.staff.sync([ref])).current_epoch(ref) == 2
        reg, d = await regeneration()
        assert (await _raw(w, invite_id, "regenerate", {"crypto": reg.crypto_body()}))[0] == 200

"""A hypothesis state machine of the portal invite lifecycle (docs/access.md).

Two matters, two contacts, the real services on the test database:
invite, resend (by any method), accept (right or wrong passcode and
password), a wrong passcode, link expiry, access expiry, remove,
regenerate. A model says what must happen; every step checks the server
agrees. Properties: a link or passcode works only while its invite is
pending (or regenerated), unexpired, the latest one sent, and only for its
own matter; a contact sees exactly the matters whose invite the model holds
active; no step fails with anything but its documented error.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import update

from rtportal.access import acceptance, invites, membership
from rtportal.access.acceptance import Acceptance
from rtportal.access.credentials import Kdf
from rtportal.access.invitecodes import PASSCODE_TRIES
from rtportal.access.ratelimit import MemoryLimiter
from rtportal.db import Database
from rtportal.db.models import Firm, Invite, Matter, MatterMember, utcnow
from rtportal.demo import create_contact, create_firm, create_matter, create_staff
from rtportal.errors import (
    InvalidCredentials,
    InvalidLink,
    InvalidPasscode,
    NotFound,
    PreconditionFailed,
    RtPortalError,
)
from rtportal.events.unit import Unit
from rtportal.notify.held import HeldNotifier
from rtportal.principal import Principal
from rtportal.settings import Settings
from tests.support.invites import received

T = TypeVar("T")
METHODS = st.sampled_from(invites.METHODS)


class _Loop:
    """An event loop in a thread of its own: the machine's rules are synchronous."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Sent:
    """One link (and passcode) as the contact received it."""

    invite_id: int
    link: str
    passcode: str | None


@dataclass
class Model:
    """What the server must hold for one invite."""

    matter: int  # index into the machine's matters
    contact: int
    method: str
    status: str = "pending"  # pending, active, removed, expired
    latest: str | None = None  # the link that works (None: none does)
    tries: int = 0
    sends: list[str] = field(default_factory=list)


class InviteLifecycle(RuleBasedStateMachine):
    db: ClassVar[Database]
    config: ClassVar[Settings]
    runner: ClassVar[_Loop]

    links = Bundle("links")

    @initialize()
    def setup(self) -> None:
        self.notifier = HeldNotifier()
        self.staff, self.matters, self.contacts = self.runner.run(self._seed())
        self.model: dict[int, Model] = {}
        self.passwords: dict[int, bytes | None] = {c.id: None for c in self.contacts}

    async def _seed(self) -> tuple[Principal, list[Matter], list[Principal]]:
        async with self.db.write() as session:
            firm = await create_firm(session, "Lifecycle Firm")
            firm.invite_expiry_days = 365
            staff = await create_staff(
                session, firm, email=f"admin{firm.id}@f.test", display_name="A", role="org_admin"
            )
            matters = [await create_matter(session, firm, title=f"M{n}") for n in range(2)]
            contacts = [
                await create_contact(
                    session,
                    firm,
                    display_name=f"C{n}",
                    email=f"c{n}.{firm.id}@client.test",
                    phone="+61400000000",
                    personal_mobile=True,
                )
                for n in range(2)
            ]
        return staff, matters, contacts

    # --- helpers -------------------------------------------------------------------

    def _live(self, matter: int, contact: int) -> Model | None:
        for model in self.model.values():
            if (model.matter, model.contact) == (matter, contact) and model.status in (
                "pending",
                "active",
            ):
                return model
        return None

    def _outcome(self, coro: Coroutine[Any, Any, T]) -> T | RtPortalError:
        try:
            return self.runner.run(coro)
        except RtPortalError as err:
            return err

    def _sent(self, invite_id: int) -> Sent:
        got = self.runner.run(received(self.db, invite_id))
        assert got.link is not None
        model = self.model[invite_id]
        model.latest = got.link
        model.tries = 0
        model.sends.append(got.link)
        assert (got.passcode is not None) == (model.method == "email_sms")
        return Sent(invite_id, got.link, got.passcode)

    async def _in_unit(self, work: Any) -> Any:
        async with Unit(self.db, None, self.config) as unit:
            return await work(unit)

    def _pick(self, data: st.DataObject) -> int | None:
        if not self.model:
            return None
        return data.draw(st.sampled_from(sorted(self.model)))

    # --- staff actions ---------------------------------------------------------------

    @rule(target=links, matter=st.integers(0, 1), contact=st.integers(0, 1), method=METHODS)
    def invite(self, matter: int, contact: int, method: str) -> Any:
        request = invites.InviteRequest(self.contacts[contact].id, method, True)

        async def work(unit: Unit) -> invites.Sent:
            return await invites.invite_round(
                unit,
                self.config,
                self.notifier,
                self.staff,
                self.matters[matter],
                [request],
                None,
                None,
                None,
            )

        result = self._outcome(self._in_unit(work))
        if self._live(matter, contact) is not None:
            assert isinstance(result, PreconditionFailed)
            assert result.details["reason"] == "already_invited"
            return multiple()
        assert isinstance(result, invites.Sent), result
        (row,) = result.invites
        self.model[row.id] = Model(matter, contact, method)
        return self._sent(row.id)

    @rule(target=links, data=st.data(), method=st.none() | METHODS)
    def resend(self, data: st.DataObject, method: str | None) -> Any:
        invite_id = self._pick(data)
        if invite_id is None:
            return multiple()
        model = self.model[invite_id]

        async def work(unit: Unit) -> invites.Sent:
            return await invites.resend(
                unit, self.config, self.notifier, self.staff, invite_id, method, None
            )

        result = self._outcome(self._in_unit(work))
        if model.status != "pending":
            assert isinstance(result, PreconditionFailed), result
            assert result.details["reason"] == "invite_not_pending"
            return multiple()
        assert isinstance(result, invites.Sent), result
        model.method = method or model.method
        return self._sent(invite_id)

    @rule(target=links, data=st.data(), method=st.none() | METHODS)
    def regenerate(self, data: st.DataObject, method: str | None) -> Any:
        invite_id = self._pick(data)
        if invite_id is None:
            return multiple()
        model = self.model[invite_id]

        async def work(unit: Unit) -> tuple[invites.Sent, invites.Closing]:
            return await invites.regenerate(
                unit, self.config, self.notifier, self.staff, invite_id, method, None
            )

        result = self._outcome(self._in_unit(work))
        if model.status not in ("pending", "active"):
            assert isinstance(result, PreconditionFailed), result
            assert result.details["reason"] == "invite_ended"
            return multiple()
        assert isinstance(result, tuple), result
        model.method = method or model.method
        self.passwords[self.contacts[model.contact].id] = None
        return self._sent(invite_id)

    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        invite_id = self._pick(data)
        if invite_id is None:
            return
        model = self.model[invite_id]

        async def work(unit: Unit) -> Any:
            return await invites.remove(unit, self.staff, invite_id, None)

        result = self._outcome(self._in_unit(work))
        if model.status not in ("pending", "active"):
            assert isinstance(result, PreconditionFailed), result
            assert result.details["reason"] == "invite_ended"
            return
        assert isinstance(result, tuple), result
        model.status, model.latest = "removed", None

    @rule(data=st.data())
    def expire_access(self, data: st.DataObject) -> None:
        """The firm's access expiry passes for an active invite."""
        invite_id = self._pick(data)
        if invite_id is None or self.model[invite_id].status != "active":
            return
        model = self.model[invite_id]
        self.runner.run(self._expire(invite_id, model))
        model.status, model.latest = "expired", None

    async def _expire(self, invite_id: int, model: Model) -> None:
        past = utcnow() - timedelta(seconds=1)
        async with self.db.write() as session:
            await session.execute(
                update(Invite).where(Invite.id == invite_id).values(access_expires_at=past)
            )
            await session.execute(
                update(MatterMember)
                .where(
                    MatterMember.matter_id == self.matters[model.matter].id,
                    MatterMember.principal_kind == "contact",
                    MatterMember.principal_id == self.contacts[model.contact].id,
                    MatterMember.removed_at.is_(None),
                )
                .values(expires_at=past)
            )

    @rule(data=st.data())
    def expire_link(self, data: st.DataObject) -> None:
        """The latest link of an invite outlives ``RTPORTAL_INVITE_LINK_TTL``."""
        invite_id = self._pick(data)
        if invite_id is None or self.model[invite_id].latest is None:
            return
        self.runner.run(self._expire_link(invite_id))
        self.model[invite_id].latest = None

    async def _expire_link(self, invite_id: int) -> None:
        async with self.db.write() as session:
            await session.execute(
                update(Invite)
                .where(Invite.id == invite_id)
                .values(link_expires_at=utcnow() - timedelta(seconds=1))
            )

    # --- the client -------------------------------------------------------------------

    @rule(sent=links, right_passcode=st.booleans(), right_password=st.booleans())
    def accept(self, sent: Sent, right_passcode: bool, right_password: bool) -> None:
        model = self.model[sent.invite_id]
        contact = self.contacts[model.contact]
        known = self.passwords[contact.id]
        if known is None:
            secret = os.urandom(32)  # a new password
        else:
            secret = known if right_password else bytes(32)
        wrong = "000000" if sent.passcode != "000000" else "000001"
        passcode = sent.passcode if right_passcode else wrong
        request = Acceptance(sent.link, passcode, Kdf(b"s" * 16), secret, None, None)
        opened = self._outcome(acceptance.open_invite(self.db, self.config, sent.link))
        result = self._outcome(
            acceptance.accept(self.db, None, self.config, MemoryLimiter(), request, None)
        )
        live = model.latest == sent.link and model.status in ("pending", "active")
        if not live:
            assert isinstance(opened, InvalidLink), opened
            assert isinstance(result, InvalidLink), result
            return
        assert isinstance(opened, dict) and opened["has_password"] == (known is not None)
        if model.method == "email_sms":
            if model.tries >= PASSCODE_TRIES:
                assert isinstance(result, InvalidPasscode), result
                return
            model.tries += 1
            if not right_passcode:
                assert isinstance(result, InvalidPasscode), result
                return
        if known is not None and secret != known:
            assert isinstance(result, InvalidCredentials), result
            return
        assert not isinstance(result, RtPortalError), result
        assert result.principal.id == contact.id
        model.status, model.latest = "active", None
        self.passwords[contact.id] = secret

    @invariant()
    def access_is_what_the_model_holds(self) -> None:
        if not hasattr(self, "model"):
            return
        for n, contact in enumerate(self.contacts):
            for m, matter in enumerate(self.matters):
                expected = any(
                    model.status == "active"
                    for model in self.model.values()
                    if (model.matter, model.contact) == (m, n)
                )
                assert self.runner.run(self._can_access(contact, matter)) == expected, (n, m)

    async def _can_access(self, contact: Principal, matter: Matter) -> bool:
        async with self.db.read() as session:
            try:
                await membership.can_access(session, contact, matter.reference)
            except NotFound:
                return False
            return True


def test_the_invite_lifecycle_follows_its_model(settings: Settings) -> None:
    runner = _Loop()
    db = runner.run(_open(settings))
    InviteLifecycle.db, InviteLifecycle.config, InviteLifecycle.runner = db, settings, runner
    try:
        run_state_machine_as_test(
            InviteLifecycle,
            settings=settings_for_machine(),
        )
    finally:
        runner.run(db.close())
        runner.close()


async def _open(config: Settings) -> Database:
    db = Database(config.database_url)
    async with db.read() as session:  # reachable and migrated
        await session.get(Firm, 1)
    return db


def settings_for_machine() -> Any:
    return hsettings(
        max_examples=25,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )

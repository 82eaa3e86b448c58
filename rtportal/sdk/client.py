"""The Python client: every flow of docs/keys.md against a real server.

``Client`` joins the pieces: ``Http`` (the network), ``login`` (password ->
login secret and backup), ``sync`` (server records -> a verified
``Directory`` checked against the trust state file), and the sans-I/O flows
(``firmkeys``, ``invitekeys``, ``epochs``, ``messages``) that produce the
request bodies. Before every act the client syncs and verifies; it never
returns content it did not verify (a failed check raises).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from rtportal import base64url
from rtportal.crypto import encoding as enc
from rtportal.crypto.certs import Certificate, Role
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import Body, Visibility
from rtportal.crypto.keys import FirmRootKey, IdentityKey, IdentityPublic
from rtportal.crypto.recovery import sas_code
from rtportal.crypto.rng import Rng, system_rng
from rtportal.errors import CryptoInvalid, PreconditionFailed
from rtportal.keys.ids import of_kind
from rtportal.principal import PrincipalKind
from rtportal.sdk import epochs, firmkeys, invitekeys, messages, records, sync
from rtportal.sdk.actor import Actor
from rtportal.sdk.errors import ApiError, PinMismatch
from rtportal.sdk.login import Kdf, backup_blob, open_backup_blob
from rtportal.sdk.state import TrustState
from rtportal.sdk.transport import Http

__all__ = ["Client", "Invited", "identity_public"]

K = "/api/v1/keys"


def _kind(value: object) -> PrincipalKind:
    if value not in ("staff", "contact", "bot"):
        raise PinMismatch(f"the server names an unknown kind of principal: {value!r}")
    return value


def now_ms() -> int:
    return int(time.time() * 1000)


def identity_public(record: bytes) -> IdentityPublic:
    r = enc.Reader(record, b"RTKU")
    public = IdentityPublic(r.fixed(32), r.fixed(32))
    r.done()
    return public


def _b64(data: bytes) -> str:
    return base64url.encode(data)


@dataclass(frozen=True, slots=True)
class Invited:
    """One invited contact: the invite id, the secret and (own_mail) the link to hand over."""

    contact_id: int
    invite_id: int
    secret: bytes
    link: str | None


class Client:
    """One person (staff member, client) of one firm, signed in over ``http``."""

    def __init__(
        self,
        http: Http,
        *,
        firm: str,
        state_dir: Path,
        public_url: str | None = None,
        clock: Callable[[], int] = now_ms,
        rng: Rng = system_rng,
    ) -> None:
        self.http = http
        self.firm = firm
        self.state_dir = state_dir
        self.public_url = public_url or http.base_url
        self.clock = clock
        self.rng = rng
        self._actor: Actor | None = None
        self._state: TrustState | None = None
        self._kdf: Kdf | None = None
        self._password: str | None = None
        self.uid: str | None = None
        self.websocket = True

    def portal_page(self) -> str:
        """The firm's portal page on the configured base URL: ``<public url>/?firm=<slug>``."""
        base = self.public_url.split("#", 1)[0].split("?", 1)[0].rstrip("/")
        return f"{base}/?{urlencode({'firm': self.firm})}"

    # ---- who I am ---------------------------------------------------------
    @property
    def actor(self) -> Actor:
        if self._actor is None:
            raise PreconditionFailed("no_identity", "no identity key: register or sign in first")
        return self._actor

    @property
    def state(self) -> TrustState:
        if self._state is None:
            raise PreconditionFailed("not_signed_in", "not signed in")
        return self._state

    def _state_path(self) -> Path:
        return self.state_dir / f"{self.firm}-{self.uid}.json"

    def _save(self) -> None:
        self.state.save(self._state_path())

    def _signed_in(self, principal: dict[str, Any]) -> None:
        self.uid = of_kind(_kind(principal["kind"]), int(principal["id"]))
        self._state = TrustState.load(self._state_path(), firm=self.firm, user=self.uid)

    def _pin(self, fingerprint: bytes) -> None:
        st = self.state
        if st.frk_fingerprint is not None and st.frk_fingerprint != fingerprint:
            raise PinMismatch("this firm root key is not the one pinned before")
        st.frk_fingerprint = fingerprint

    async def sign_in(self, email: str, password: str, *, totp: str | None = None) -> None:
        """prelogin -> Argon2id -> signin -> open the key backup (identity + pinned FRK)."""
        kdf = Kdf.from_json(
            (await self.http.call("POST", "/api/v1/prelogin", {"firm": self.firm, "email": email}))[
                "kdf"
            ]
        )
        keys = kdf.keys(password)
        body = {"firm": self.firm, "email": email, "login_secret": _b64(keys.login_secret)}
        if totp is not None:
            body["totp"] = totp
        answer = await self.http.call("POST", "/api/v1/signin", body)
        self._signed_in(answer["principal"])
        self._kdf, self._password = kdf, password
        if answer.get("key_backup"):
            assert self.uid is not None
            _, contents = open_backup_blob(
                answer["key_backup"], password, firm=self.firm, user=self.uid
            )
            self._pin(contents.frk_fingerprint)
            self._actor = Actor(self.firm, self.uid, contents.identity)
        self._save()

    async def use_token(self, email: str, password: str) -> None:
        """Signed in by the ``Http``'s API token (bots, scripts, the demo seed): the password
        only derives the key backup's KEK; an existing backup is opened."""
        kdf = Kdf.from_json(
            (await self.http.call("POST", "/api/v1/prelogin", {"firm": self.firm, "email": email}))[
                "kdf"
            ]
        )
        me = await self.http.call("GET", "/api/v1/me")
        self._signed_in(me["principal"])
        self._kdf, self._password = kdf, password
        mine = await self.http.call("GET", f"{K}/me")
        if mine.get("backup"):
            assert self.uid is not None
            _, contents = open_backup_blob(mine["backup"], password, firm=self.firm, user=self.uid)
            self._pin(contents.frk_fingerprint)
            self._actor = Actor(self.firm, self.uid, contents.identity)
        self._save()

    async def register_identity(
        self, *, identity: IdentityKey | None = None, frk_fingerprint: bytes | None = None
    ) -> IdentityKey:
        """``PUT /keys/me``: a new identity key and its backup under my password.

        The FRK is pinned from ``frk_fingerprint`` (compare it out of band), else
        from the firm's record on first use.
        """
        if self._kdf is None or self._password is None or self.uid is None:
            raise PreconditionFailed("not_signed_in", "sign in with a password first")
        if frk_fingerprint is None and self.state.frk_fingerprint is None:
            firm = await self.http.call("GET", f"{K}/firm")
            if firm.get("frk") is None:
                raise PreconditionFailed("frk_missing", "the firm has no root key yet")
            frk_fingerprint = sync.frk_from_record(sync.decode(firm["frk"])).fingerprint
        self._pin(frk_fingerprint or self.state.frk_fingerprint or b"")
        fp = self.state.frk_fingerprint
        assert fp is not None
        key = identity or IdentityKey.generate(self.rng)
        keys = self._kdf.keys(self._password)
        blob = backup_blob(
            self._kdf,
            keys,
            firm=self.firm,
            user=self.uid,
            identity=key,
            frk_fingerprint=fp,
            rng=self.rng,
        )
        body = {
            "public_keys": _b64(key.public.record()),
            "backup": blob,
            "login_secret": _b64(keys.login_secret),  # the server asks for it again
        }
        await self.http.call("PUT", f"{K}/me", body)
        self._actor = Actor(self.firm, self.uid, key)
        self._save()
        return key

    async def accept_invite(self, link: str, password: str) -> None:
        """A client: the identity from the link's secret ``R``, the FRK pinned from ``frk=``.

        The identity is derived for the invited contact's rtp1 id; when ``invites/open``
        does not name the contact, the link is accepted first and the keys registered
        with ``PUT /keys/me`` in the new session.
        """
        token, secret, frk_fp = invitekeys.parse_accept_fragment(link)
        opened = await self.http.call("POST", "/api/v1/invites/open", {"token": token})
        kdf = Kdf.from_json(opened["kdf"])
        keys = kdf.keys(password)
        body: dict[str, Any] = {
            "token": token,
            "kdf": kdf.to_json(),
            "login_secret": _b64(keys.login_secret),
        }
        named = (opened.get("contact") or {}).get("id")
        if named is not None:
            uid = of_kind("contact", int(named))
            identity = records.invite_identity(secret, self.firm, uid)
            body["public_keys"] = _b64(identity.public.record())
            body["key_backup"] = backup_blob(
                kdf, keys, firm=self.firm, user=uid, identity=identity, frk_fingerprint=frk_fp
            )
        answer = await self.http.call("POST", "/api/v1/invites/accept", body)
        self._signed_in(answer["principal"])
        assert self.uid is not None
        if named is not None and self.uid != uid:
            raise PinMismatch("signed in as someone other than the invited contact")
        self._kdf, self._password = kdf, password
        self._pin(frk_fp)
        if named is None:
            await self.register_identity(
                identity=records.invite_identity(secret, self.firm, self.uid),
                frk_fingerprint=frk_fp,
            )
        else:
            self._actor = Actor(self.firm, self.uid, identity)
        self._save()
        if opened.get("delivery") == "portal":
            await self.hand_over()

    async def hand_over(self) -> str:
        """Portal delivery (the server saw ``R``): a fresh identity registered with a handover
        the invite key signs, its backup replacing the invite key's; returns the 6-digit code
        to read to the adviser. The invite key reads and writes until staff certify the
        fresh key (``sync`` then switches)."""
        if self._kdf is None or self._password is None or self._actor is None:
            raise PreconditionFailed("not_signed_in", "accept the invite first")
        fp = self.state.frk_fingerprint
        assert fp is not None
        fresh, handover = invitekeys.hand_over(self._actor, now_ms=self.clock(), rng=self.rng)
        keys = self._kdf.keys(self._password)
        blob = backup_blob(
            self._kdf,
            keys,
            firm=self.firm,
            user=self._actor.uid,
            identity=fresh,
            frk_fingerprint=fp,
            rng=self.rng,
        )
        body = {
            "public_keys": _b64(fresh.public.record()),
            "backup": blob,
            "handover": _b64(handover.encode()),
            "login_secret": _b64(keys.login_secret),  # the server asks for it again
        }
        await self.http.call("PUT", f"{K}/me", body)
        self._actor.next = fresh
        return self.verification_code or ""

    @property
    def verification_code(self) -> str | None:
        """The code of my handed-over key while staff have not confirmed it, else ``None``."""
        nxt = None if self._actor is None else self._actor.next
        return None if nxt is None else sas_code(self.firm, self.actor.uid, nxt.public)

    # ---- verified view of the directory -----------------------------------
    async def sync(self, matters: Iterable[str] = ()) -> Directory:
        """Fetch and verify the firm's records and ``matters``' chains; pins are saved."""
        now = self.clock()
        firm = await self.http.call("GET", f"{K}/firm")
        d = sync.verify_firm(firm, self.state, self.actor, now)
        for ref in matters:
            data = await self.http.call("GET", f"{K}/matters/{ref}")
            sync.verify_matter(
                d,
                data,
                self.state,
                self.actor,
                ref,
                now,
                client_revocations=firm["revocations"]["client"],
            )
        nxt = self.actor.next
        if nxt is not None and matters and _usable(d, self.actor.uid, nxt.kid, now):
            self.actor.promote()  # staff confirmed the code: the fresh key signs from now on
        self._save()
        return d

    async def matters(self) -> list[str]:
        return [m["ref"] for m in (await self.http.call("GET", "/api/v1/matters"))["matters"]]

    # ---- messages ---------------------------------------------------------
    async def send(
        self,
        matter: str,
        *,
        thread: str,
        text: str,
        subject: str = "",
        staff_only: bool = False,
    ) -> int:
        """Seal under the newest verified epoch and send over the websocket; returns the seq.

        Staff: a write refused ``stale_epoch`` ``rekey_required`` (a client left the
        matter without the next epoch) posts that epoch without them, then sends again."""
        try:
            return await self._send(matter, thread, text, subject, staff_only)
        except ApiError as exc:
            if not (
                exc.server_code == "stale_epoch"
                and exc.details.get("reason") == "rekey_required"
                and self.uid is not None
                and self.uid.startswith("s")
            ):
                raise
            await self.rekey_without(matter, exc.details.get("users") or [])
        return await self._send(matter, thread, text, subject, staff_only)

    async def _send(
        self, matter: str, thread: str, text: str, subject: str, staff_only: bool
    ) -> int:
        d = await self.sync([matter])
        vis = Visibility.STAFF if staff_only else Visibility.PORTAL
        env = messages.seal(
            d,
            self.actor,
            matter=matter,
            thread=thread,
            body=Body(subject, text),
            now_ms=self.clock(),
            vis=vis,
            rng=self.rng,
        )
        out = [messages.outgoing(matter, thread, env)]
        # over the websocket; an in-process (ASGI) transport has none, so it posts over HTTP
        if self.websocket:
            [seq] = await self.http.send_events(out)
        else:
            [seq] = await self.http.post_events(out)
        self.state.matter(matter).remember(env.header.msg_id, seq)
        self._save()
        return seq

    async def read(self, matter: str) -> list[messages.Item]:
        """Every content event of ``matter``, verified, decrypted (raises at the first failure)."""
        d = await self.sync([matter])
        pin = self.state.matter(matter)
        items: list[messages.Item] = []
        after = 0
        while True:
            page = await self.http.call(
                "GET", f"/api/v1/matters/{matter}/events", after=after, limit=500
            )
            for event in page["events"]:
                item = messages.open_event(d, pin, event, self.clock())
                if item is not None:
                    items.append(item)
            after = int(page["next"])
            if not page["more"]:
                break
        self._save()
        return items

    # ---- staff: epochs ----------------------------------------------------
    async def post_epoch(
        self, bundle: epochs.EpochBundle, certs: Sequence[Certificate] = ()
    ) -> None:
        body = bundle.body()
        if certs:
            body["certs"] = [_b64(c.encode()) for c in certs]
        await self.http.call("POST", f"{K}/matters/{bundle.matter}/epochs", body)

    async def next_epoch_rebased(
        self, matter: str, make: Callable[[Directory], epochs.EpochBundle], *, tries: int = 3
    ) -> epochs.EpochBundle:
        """Make the next epoch from a fresh sync and post it; on ``epoch_conflict`` (another
        staff member's epoch won the compare-and-set) sync again and re-base on theirs."""
        for attempt in range(tries):
            bundle = make(await self.sync([matter]))
            try:
                await self.post_epoch(bundle)
                return bundle
            except ApiError as exc:
                if exc.server_code != "epoch_conflict" or attempt == tries - 1:
                    raise
        raise AssertionError("unreachable")

    async def rekey_without(self, matter: str, users: Iterable[object]) -> epochs.EpochBundle:
        """The next epoch without the clients ``users`` (the server's ``rekey_required``):
        only clients are dropped, whatever the list names."""
        gone = {u for u in users if isinstance(u, str) and u.startswith("c")}
        if not gone:
            raise PreconditionFailed("rekey_required", "the server names no client to drop")

        def make(d: Directory) -> epochs.EpochBundle:
            members = tuple(m for m in epochs.current_members(d, matter) if m.user not in gone)
            return epochs.next_epoch(
                d, self.actor, matter=matter, members=members, now_ms=self.clock(), rng=self.rng
            )

        return await self.next_epoch_rebased(matter, make)

    async def refresh_head(self, matter: str) -> None:
        d = await self.sync([matter])
        head = epochs.refresh_head(d, self.actor, matter=matter, now_ms=self.clock())
        await self.http.call("PUT", f"{K}/matters/{matter}/head", {"head": _b64(head.encode())})

    # ---- staff: clients ---------------------------------------------------
    async def invite(
        self,
        matter: str,
        welcomes: Sequence[tuple[int, str, str]],
        *,
        method: str = "email",
        delivery: str = "own_mail",
    ) -> list[Invited]:
        """Invite ``(contact id, subject, text)``s: keys, next epoch, encrypted welcomes."""
        d = await self.sync([matter])
        bodies = [(cid, Body(subject, text)) for cid, subject, text in welcomes]
        rnd = invitekeys.invite_round(
            d,
            self.actor,
            matter=matter,
            welcomes=bodies,
            delivery=delivery,
            now_ms=self.clock(),
            rng=self.rng,
        )
        body = {
            "invites": [{"contact_id": cid, "method": method} for cid, _, _ in welcomes],
            "crypto": rnd.crypto_body(),
        }
        answer = await self.http.call("POST", f"/api/v1/matters/{matter}/invites", body)
        return [
            self._invited(inv.contact_id, int(iid), inv.secret, answer, d)
            for inv, iid in zip(rnd.invitees, answer["invites"], strict=True)
        ]

    def _invited(
        self, cid: int, iid: int, secret: bytes, answer: dict[str, Any], d: Directory
    ) -> Invited:
        """``links`` (own_mail): ``[{invite, contact_id, token, url}]``; the fragment is ours,
        and so is the page: the link is built on the configured ``public_url``, never the
        server's ``url`` (which could send the secret ``R`` in the fragment to any site)."""
        for entry in answer.get("links") or []:
            if int(entry["contact_id"]) == cid:
                link = invitekeys.accept_link(
                    self.portal_page(), str(entry["token"]), secret, d.frk
                )
                return Invited(cid, int(entry.get("invite", iid)), secret, link)
        return Invited(cid, iid, secret, None)

    async def remove(self, matter: str, *, invite_id: int, contact_id: int) -> None:
        """Remove the client (access), then the next epoch without them."""
        await self.http.call("POST", f"/api/v1/invites/{invite_id}/remove", {})
        user = of_kind("contact", contact_id)
        await self.next_epoch_rebased(
            matter,
            lambda d: invitekeys.removal(
                d, self.actor, matter=matter, user=user, now_ms=self.clock(), rng=self.rng
            ),
        )

    async def regenerate(
        self, matter: str, *, invite_id: int, contact_id: int, delivery: str = "own_mail"
    ) -> Invited:
        """New login details: key from ``R'``, next epoch without the old key, history re-wrapped,
        the old key revoked, the password cleared and the sessions ended, all in
        ``POST /invites/{id}/regenerate``; returns the invite's new link (own_mail)."""
        return await self._relink("regenerate", matter, invite_id, contact_id, delivery)

    async def resend(
        self, matter: str, *, invite_id: int, contact_id: int, delivery: str = "own_mail"
    ) -> Invited:
        """A pending invite's new link with a new ``R'`` (the old key revoked as in regenerate)."""
        return await self._relink("resend", matter, invite_id, contact_id, delivery)

    async def _relink(
        self, act: str, matter: str, invite_id: int, contact_id: int, delivery: str, tries: int = 3
    ) -> Invited:
        """On ``epoch_conflict`` nothing was stored (one transaction): sync and re-base."""
        for attempt in range(tries):
            d = await self.sync([matter])
            reg = invitekeys.regenerate(
                d,
                self.actor,
                matter=matter,
                contact_id=contact_id,
                now_ms=self.clock(),
                rng=self.rng,
            )
            try:
                answer = await self.http.call(
                    "POST",
                    f"/api/v1/invites/{invite_id}/{act}",
                    {"crypto": reg.crypto_body(delivery)},
                )
            except ApiError as exc:
                if exc.server_code != "epoch_conflict" or attempt == tries - 1:
                    raise
                continue
            return self._invited(contact_id, invite_id, reg.invitee.secret, answer, d)
        raise AssertionError("unreachable")

    async def confirm_handover(self, matter: str, *, contact_id: int, code: str) -> None:
        """Staff: the client read out ``code``; check it against the handover the invite
        list shows (signed by the client's certified key), certify the fresh key, post the
        next epoch with it in place of the invite key, and revoke the invite key."""
        listed = await self.http.call("GET", f"/api/v1/matters/{matter}/invites")
        records_ = [
            row["handover"]["record"]
            for row in listed["invites"]
            if row["contact"]["id"] == contact_id and row.get("handover")
        ]
        if not records_:
            raise PreconditionFailed("no_handover", "the client has not handed over a key yet")
        made = invitekeys.confirm_handover(
            await self.sync([matter]),
            self.actor,
            matter=matter,
            contact_id=contact_id,
            handover=sync.decode(records_[0]),
            code=code,
            now_ms=self.clock(),
            rng=self.rng,
        )
        await self.http.call("POST", f"{K}/certs", made.certs_body())
        await self.post_epoch(made.epoch)
        await self.http.call("POST", f"{K}/client-revocations", made.revocations_body())

    # ---- org admin: the firm's keys ---------------------------------------
    async def set_up_firm(self, frk: FirmRootKey) -> firmkeys.FirmSetup:
        """Firm set-up by the signed-in admin: root, identity, cert, FEK v1, revocation list v1."""
        await self.register_identity(frk_fingerprint=frk.public.fingerprint)
        setup = firmkeys.firm_setup(frk, self.actor, now_ms=self.clock(), rng=self.rng)
        await self.http.call("PUT", f"{K}/root", setup.root_body())
        await self.http.call("POST", f"{K}/certs", setup.certs_body())
        await self.http.call("POST", f"{K}/escrow", setup.escrow_body())
        await self.http.call("PUT", f"{K}/revocations", setup.revocations_body())
        self.actor.firm_keys[setup.fek.version] = setup.fek
        return setup

    async def pending_staff(self) -> list[dict[str, Any]]:
        return list((await self.http.call("GET", f"{K}/pending"))["pending"])

    async def approve_pending(
        self, frk: FirmRootKey, *, only: Iterable[str] | None = None
    ) -> list[str]:
        """Certify the staff keys waiting for approval (all, or the rtp1 ids in ``only``)."""
        self._check_frk(frk)
        await self.sync()
        wanted = set(only) if only is not None else None
        pending = [
            (str(p["user"]), identity_public(sync.decode(p["public_keys"])))
            for p in await self.pending_staff()
            if wanted is None or p["user"] in wanted
        ]
        if pending:
            approval = firmkeys.approve_staff(
                frk, self.actor, pending, now_ms=self.clock(), rng=self.rng
            )
            await self.http.call("POST", f"{K}/certs", approval.body())
        return [user for user, _ in pending]

    def _check_frk(self, frk: FirmRootKey) -> None:
        if self.state.frk_fingerprint != frk.public.fingerprint:
            raise PinMismatch("this firm root key file is not the firm's pinned root key")

    async def staff_leaves(self, frk: FirmRootKey, *, staff_id: int) -> list[str]:
        """Disable the member, revoke their keys (``left``), rotate FEK/FIR, and move every
        matter with a chain to a new epoch under it; returns the matters moved."""
        self._check_frk(frk)
        await self.http.call("PATCH", f"/api/v1/staff/{staff_id}", {"status": "disabled"})
        refs = await self.matters()
        firm = await self.http.call("GET", f"{K}/firm")
        d = await self.sync(refs)
        leaving_uid = of_kind("staff", staff_id)
        leaving: list[tuple[str, bytes]] = []
        remaining: list[tuple[str, IdentityPublic]] = []
        for raw in firm["certs"]:
            body = Certificate.decode(sync.decode(raw)).body
            if body.role is not Role.STAFF:
                continue
            if body.user == leaving_uid:
                leaving.append((body.user, body.kid))
            elif _usable(d, body.user, body.kid, self.clock()):
                remaining.append((body.user, body.public))
        current = records.decode_revocation_list(sync.decode(firm["revocations"]["list"]))
        rot = firmkeys.rotate_escrow(
            frk,
            self.actor,
            current=current,
            leaving=leaving,
            remaining=sorted(set(remaining), key=lambda r: r[0]),
            now_ms=self.clock(),
            rng=self.rng,
        )
        await self.http.call("PUT", f"{K}/revocations", rot.revocations_body())
        await self.http.call("POST", f"{K}/escrow", rot.escrow_body())
        d = await self.sync(refs)
        moved: list[str] = []
        for ref in refs:
            if d.current_epoch(ref) == 0:
                continue
            await self.next_epoch_rebased(ref, self._same_members(ref))
            moved.append(ref)
        return moved

    def _same_members(self, ref: str) -> Callable[[Directory], epochs.EpochBundle]:
        def make(d: Directory) -> epochs.EpochBundle:
            members = epochs.current_members(d, ref)
            return epochs.next_epoch(
                d, self.actor, matter=ref, members=members, now_ms=self.clock(), rng=self.rng
            )

        return make


def _usable(d: Directory, user: str, kid: bytes, now: int) -> bool:
    try:
        d.certificate(user, kid, now)
    except CryptoInvalid:  # revoked or not valid: not a recipient of the new firm keys
        return False
    return True

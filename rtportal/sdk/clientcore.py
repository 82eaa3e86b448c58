"""What every user of the Python client does: sign in, keys, verified sync, messages.

``ClientCore`` is the part of ``rtportal.sdk.client.Client`` that clients, staff
and admins share; ``client.py`` adds the staff and org-admin flows on top.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from rtportal import base64url
from rtportal.crypto import encoding as enc
from rtportal.crypto.directory import Directory
from rtportal.crypto.keys import IdentityKey, IdentityPublic
from rtportal.crypto.recovery import sas_code
from rtportal.crypto.rng import Rng, system_rng
from rtportal.errors import CryptoInvalid, PreconditionFailed
from rtportal.keys.ids import of_kind
from rtportal.principal import PrincipalKind
from rtportal.sdk import bindings, invitekeys, messages, records, sync
from rtportal.sdk.actor import Actor
from rtportal.sdk.epochs import current_members
from rtportal.sdk.errors import PinMismatch
from rtportal.sdk.login import Kdf, backup_blob, open_backup_blob
from rtportal.sdk.state import TrustState
from rtportal.sdk.transport import Http

__all__ = ["ClientCore", "Invited", "K", "identity_public", "now_ms"]

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


class ClientCore:
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

    async def accept_invite(self, link: str, password: str, *, totp: str | None = None) -> None:
        """A client: the identity from the link's secret ``R``, the FRK pinned from ``frk=``.

        The identity is derived for the invited contact's rtp1 id; when ``invites/open``
        does not name the contact, the link is accepted first and the keys registered
        with ``PUT /keys/me`` in the new session. A contact who already has a password
        keeps their identity and binds the link's key to it (``_accept_another``).
        """
        token, secret, frk_fp = invitekeys.parse_accept_fragment(link)
        opened = await self.http.call("POST", "/api/v1/invites/open", {"token": token})
        if opened.get("has_password"):
            await self._accept_another(token, secret, frk_fp, opened, password, totp)
            return
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

    async def _accept_another(
        self,
        token: str,
        secret: bytes,
        frk_fp: bytes,
        opened: dict[str, Any],
        password: str,
        totp: str | None,
    ) -> None:
        """docs/keys.md "A second matter": sign in through the link with my password (and
        second factor), open my backup, and have the link's invite key sign a binding to
        my identity; that key reads and writes in this matter until staff certify my
        identity for it (``sync`` then switches). The backup stays as it is."""
        kdf = Kdf.from_json(opened["kdf"])
        keys = kdf.keys(password)
        body: dict[str, Any] = {"token": token, "login_secret": _b64(keys.login_secret)}
        if totp is not None:
            body["totp"] = totp
        answer = await self.http.call("POST", "/api/v1/invites/accept", body)
        self._signed_in(answer["principal"])
        self._kdf, self._password = kdf, password
        assert self.uid is not None
        invite = records.invite_identity(secret, self.firm, self.uid)
        self._pin(frk_fp)
        mine = await self.http.call("GET", f"{K}/me")
        if not mine.get("backup"):  # a password from before the firm's keys: this is the first
            await self.register_identity(identity=invite, frk_fingerprint=frk_fp)
            if opened.get("delivery") == "portal":
                # the server mailed R: its key is handed over, as at a first acceptance
                await self.hand_over()
            return
        _, contents = open_backup_blob(mine["backup"], password, firm=self.firm, user=self.uid)
        self._pin(contents.frk_fingerprint)  # the link and my backup pin the same root
        self._actor = Actor(self.firm, self.uid, contents.identity)
        binding = bindings.bind(
            invite,
            firm=self.firm,
            user=self.uid,
            identity=contents.identity.public,
            now_ms=self.clock(),
        )
        # kept first: the link is used up, and this key reads the matter until staff certify
        self._actor.bound[str(opened["matter"]["ref"])] = invite
        await self.http.call(
            "PUT",
            f"{K}/me",
            {
                "public_keys": _b64(contents.identity.public.record()),
                "handover": _b64(binding.encode()),
                "login_secret": _b64(keys.login_secret),  # the server asks for it again
            },
        )
        self._save()

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
        for ref in matters:
            if ref in self.actor.bound and self.actor.identity.kid in {
                m.kid for m in current_members(d, ref) if m.user == self.actor.uid
            }:
                self.actor.unbind(ref)  # staff certified my identity for this matter too
        nxt = self.actor.next
        if nxt is not None and matters and usable(d, self.actor.uid, nxt.kid, now):
            self.actor.promote()  # staff confirmed the code: the fresh key signs from now on
        self._save()
        return d

    async def matters(self) -> list[str]:
        return [m["ref"] for m in (await self.http.call("GET", "/api/v1/matters"))["matters"]]

    # ---- messages ---------------------------------------------------------
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
            after = page["next"]  # a seq, or a contact's cursor token
            if not page["more"]:
                break
        self._save()
        return items


def usable(d: Directory, user: str, kid: bytes, now: int) -> bool:
    try:
        d.certificate(user, kid, now)
    except CryptoInvalid:  # revoked or not valid: not a recipient of the new firm keys
        return False
    return True

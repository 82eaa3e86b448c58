"""A firm with keys, built through the key directory's API: for the tests of ``rtportal.keys``.

``KeyFirm`` pairs a ``FirmKit`` (the firm's rows and bearer tokens) with a
``World`` of the rtp1 library (tests/support/crypto/world.py) whose ids are
the real ones: firm = slug, matter = reference, ``s<id>`` / ``c<id>`` /
``b<id>``. Its methods make real records and post them as a browser would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import httpx

from rtportal.access.credentials import Kdf, set_login
from rtportal.base64url import encode
from rtportal.crypto.backup import Argon2Params, BackupContents, create_backup
from rtportal.crypto.certs import (
    Flag,
    RevocationBody,
    RevocationEntry,
    RevocationListBody,
    Role,
    revoke,
    sign_revocation_list,
)
from rtportal.crypto.envelope import CTYPE_TEXT, Envelope, Header, Visibility, seal_envelope
from rtportal.crypto.kdf import message_key
from rtportal.crypto.keys import EscrowRecordBody, IdentityKey, sign_escrow_record
from rtportal.crypto.manifest import EpochHead, HeadBody, Manifest, sign_head
from rtportal.crypto.wrap import FEK_RECIPIENT
from rtportal.principal import Principal
from tests.conftest import FirmKit
from tests.support.crypto.world import NOW_MS, World
from tests.support.logins import firm_slug

__all__ = ["DAY_MS", "KeyFirm", "b64", "key_firm"]

DAY_MS = 86_400_000


def b64(data: bytes) -> str:
    return encode(data)


def uid(principal: Principal) -> str:
    return {"staff": "s", "contact": "c", "bot": "b"}[principal.kind] + str(principal.id)


@dataclass
class KeyFirm:
    kit: FirmKit
    http: httpx.AsyncClient
    world: World
    slug: str
    revocation_version: int = 0
    heads: dict[str, EpochHead] = field(default_factory=dict)
    logins: dict[str, tuple[Kdf, bytes]] = field(default_factory=dict)  # uid -> (kdf, secret)

    @property
    def admin(self) -> str:
        return uid(self.kit.admin)

    @property
    def staff(self) -> str:
        return uid(self.kit.staff)

    @property
    def contact(self) -> str:
        return uid(self.kit.contact)

    @property
    def bot(self) -> str:
        return uid(self.kit.bot)

    @property
    def ref(self) -> str:
        return self.kit.ref

    async def call(
        self, method: str, path: str, who: str, body: Any = None, status: int | None = None
    ) -> httpx.Response:
        response = await self.http.request(
            method, f"/api/v1/keys{path}", json=body, headers=self.kit.auth(who)
        )
        if status is not None:
            assert response.status_code == status, response.text
        return response

    async def login(self, principal: Principal) -> None:
        """A credential (a password) for ``principal``: what PUT /keys/me needs."""
        kdf, secret = Kdf(os.urandom(16)), os.urandom(32)
        async with self.kit.db.write() as session:
            await set_login(
                session,
                firm_id=principal.firm_id,
                principal_kind=principal.kind,
                principal_id=principal.id,
                email=f"{uid(principal)}.{os.urandom(4).hex()}@keys.test",
                kdf=kdf,
                login_secret=secret,
            )
        self.logins[uid(principal)] = (kdf, secret)

    def backup(self, principal: Principal, key: IdentityKey, *, user: str | None = None) -> bytes:
        """A real key backup under ``principal``'s login kdf (the KEK is random here:
        the server cannot open a backup, only read its header)."""
        kdf, _ = self.logins[uid(principal)]
        params = Argon2Params(kdf.m_kib, kdf.t, kdf.p)
        contents = BackupContents(key, self.world.frk.public.fingerprint)
        made = create_backup(
            self.slug,
            user or uid(principal),
            os.urandom(32),
            contents,
            params=params,
            salt=kdf.salt,
        )
        return made.encode()

    def me_body(self, principal: Principal, key: IdentityKey) -> dict[str, str]:
        """The body of ``PUT /keys/me``: keys, backup and the current login secret."""
        return {
            "public_keys": b64(key.public.record()),
            "backup": b64(self.backup(principal, key)),
            "login_secret": b64(self.logins[uid(principal)][1]),
        }

    async def register(self, who: str, principal: Principal, key: IdentityKey) -> None:
        await self.login(principal)
        await self.call("PUT", "/me", who, self.me_body(principal, key), 200)

    def cert_of(self, user: str) -> str:
        return b64(self.world.certs[user].encode())

    async def set_up(self) -> None:
        """Firm set-up as docs/keys.md "Flows" says: root, the admin and staff
        member certified (may certify clients), escrow v1 with its wraps, the
        first revocation list, the bot certified, the contact certified for the matter."""
        await self.call("PUT", "/root", "admin", {"frk": b64(self.world.frk.public.record())}, 201)
        for who, principal in (("admin", self.kit.admin), ("staff", self.kit.staff)):
            key = IdentityKey.generate()
            await self.register(who, principal, key)
            self.world.add_user(uid(principal), Role.STAFF, flags=Flag.CERTIFY_CLIENTS, key=key)
        certs = [self.cert_of(self.admin), self.cert_of(self.staff)]
        await self.call("POST", "/certs", "admin", {"certs": certs}, 201)
        await self.post_escrow(1, [self.admin, self.staff])
        await self.put_revocations([])
        self.world.add_user(self.bot, Role.BOT)
        await self.call("POST", "/certs", "admin", {"certs": [self.cert_of(self.bot)]}, 201)
        self.world.add_user(self.contact, Role.CLIENT, scopes=(self.ref,), issuer=self.staff)
        await self.call("POST", "/certs", "staff", {"certs": [self.cert_of(self.contact)]}, 201)

    def client_revocation(self, serial: int = 1, issuer: str | None = None) -> bytes:
        """The contact's key revoked by ``issuer`` (default: the staff member), ``RTVX``."""
        issuer = issuer or self.staff
        body = RevocationBody(
            self.slug,
            self.contact,
            self.world.ids[self.contact].kid,
            serial,
            NOW_MS,
            issuer,
            self.world.ids[issuer].kid,
        )
        return revoke(body, self.world.ids[issuer]).encode()

    def escrow(self, version: int) -> bytes:
        body = EscrowRecordBody(self.slug, version, self.world.fek.public.x_pk, NOW_MS)
        return sign_escrow_record(body, self.world.frk).encode()

    async def post_escrow(self, version: int, recipients: list[str]) -> None:
        wraps = [b64(self.world.wrap_firm_keys(r, wrapper=self.admin).encode()) for r in recipients]
        body = {"record": b64(self.escrow(version)), "wraps": wraps}
        await self.call("POST", "/escrow", "admin", body, 201)

    def revocation_list(self, version: int, entries: list[RevocationEntry]) -> bytes:
        body = RevocationListBody(self.slug, version, NOW_MS, NOW_MS + 30 * DAY_MS, tuple(entries))
        return sign_revocation_list(body, self.world.frk).encode()

    async def put_revocations(self, entries: list[RevocationEntry]) -> None:
        self.revocation_version += 1
        data = self.revocation_list(self.revocation_version, entries)
        await self.call("PUT", "/revocations", "admin", {"list": b64(data)}, 200)

    def head(self, manifest: Manifest, signer: str | None = None, ts_ms: int = NOW_MS) -> bytes:
        signer = signer or manifest.body.creator
        body = HeadBody(
            self.slug,
            manifest.body.matter,
            manifest.body.epoch,
            manifest.body.hash,
            ts_ms,
            signer,
            self.world.ids[signer].kid,
        )
        return sign_head(body, self.world.ids[signer]).encode()

    def epoch_body(
        self, members: tuple[str, ...], *, matter: str | None = None, creator: str | None = None
    ) -> tuple[Manifest, dict[str, Any]]:
        """The next epoch of ``matter`` (default: the kit's) made by ``creator`` (the staff
        member): its manifest and the POST body (head, wraps to #fek and each member)."""
        matter = matter or self.ref
        creator = creator or self.staff
        manifest, _ = self.world.new_epoch(matter, members, creator=creator)
        epoch = manifest.body.epoch
        wraps = [self.world.wrap_mek(matter, epoch, FEK_RECIPIENT, wrapper=creator)]
        wraps += [self.world.wrap_mek(matter, epoch, m, wrapper=creator) for m in members]
        body = {
            "manifest": b64(manifest.encode()),
            "head": b64(self.head(manifest)),
            "wraps": [b64(w.encode()) for w in wraps],
        }
        return manifest, body

    async def post_epoch(self, who: str = "staff", members: tuple[str, ...] = ()) -> Manifest:
        manifest, body = self.epoch_body(members or (self.contact,))
        await self.call("POST", f"/matters/{self.ref}/epochs", who, body, 201)
        return manifest

    def seal(
        self,
        sender: str,
        *,
        thread: str = "t1",
        epoch: int | None = None,
        key: IdentityKey | None = None,
        vis: Visibility = Visibility.PORTAL,
        matter: str | None = None,
        as_user: str | None = None,
    ) -> Envelope:
        """A message of ``sender`` under ``epoch`` (default: the newest)."""
        matter = matter or self.ref
        chain = self.world.chains[matter]
        use = epoch or chain.epoch
        signer = key or self.world.ids[sender]
        header = Header(
            self.slug,
            matter,
            thread,
            os.urandom(16),
            None,
            as_user or sender,
            signer.kid,
            use,
            vis,
            NOW_MS,
            CTYPE_TEXT,
        )
        mek = chain.meks[use]
        return seal_envelope(header, message_key(mek, self.slug, matter, use), b"hello", signer)


async def key_firm(kit: FirmKit, http: httpx.AsyncClient, *, set_up: bool = True) -> KeyFirm:
    slug = await firm_slug(kit.db, kit.firm_id)
    kf = KeyFirm(kit, http, World(slug), slug)
    if set_up:
        await kf.set_up()
    return kf

"""A firm with keys, built through the key directory's API, as a staff browser would.

``KeyFirm`` pairs a ``FirmKit`` (the firm's rows and bearer tokens) with a
``World`` of the rtp1 library (tests/support/crypto/world.py) whose ids are
the real ones: firm = slug, matter = reference, ``s<id>`` / ``c<id>`` /
``b<id>``. Its methods make real records and post them as a browser would:
for the tests of ``rtportal.keys`` (at the library's fixed ``NOW_MS``), and
for browser tests and the browser benchmark (``now_ms`` = the real time,
which a page's freshness checks need): the org admin's firm set-up, the
approval queue, an invite round's ``crypto`` object, envelopes sealed and
opened as staff would.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from rtportal.access.credentials import Kdf, set_login
from rtportal.base64url import decode, encode
from rtportal.crypto import encoding as enc
from rtportal.crypto.backup import Argon2Params, BackupContents, create_backup
from rtportal.crypto.certs import (
    FRK_ISSUER,
    CertBody,
    Flag,
    RevocationBody,
    RevocationEntry,
    RevocationListBody,
    Role,
    issue,
    revoke,
    sign_revocation_list,
)
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import (
    CTYPE_BODY,
    CTYPE_TEXT,
    AttachmentDescriptor,
    Body,
    Envelope,
    Header,
    Visibility,
    seal_envelope,
)
from rtportal.crypto.kdf import message_key
from rtportal.crypto.keys import (
    EscrowRecordBody,
    IdentityKey,
    IdentityPublic,
    sign_escrow_record,
)
from rtportal.crypto.manifest import EpochHead, HeadBody, Manifest, sign_head
from rtportal.crypto.wrap import FEK_RECIPIENT, FIRM_MATTER, WrapInfo, WrapKind, wrap_key
from rtportal.principal import Principal
from tests.conftest import FirmKit
from tests.support.crypto.world import NOW_MS, World
from tests.support.logins import firm_slug

__all__ = ["DAY_MS", "KeyFirm", "b64", "key_firm"]

DAY_MS = 86_400_000


def b64(data: bytes) -> str:
    return encode(data)


def base64url_decode(text: str) -> bytes:
    data = decode(text, 1 << 16)
    assert data is not None
    return data


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
    invite_secrets: dict[str, bytes] = field(default_factory=dict)  # uid -> R

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

    # ---- the org admin's and staff browsers' flows, for pages and benchmarks ----------
    async def set_up_by_admin(self, login_secret: bytes) -> None:
        """Firm set-up by the org admin alone, who signs in with a real password
        (``login_secret`` is theirs): root, their identity and certificate, escrow
        version 1 wrapped to them, the first revocation list. Other staff register
        in their browsers and wait for ``approve_pending``."""
        key = IdentityKey.generate()
        self.world.add_user(self.admin, Role.STAFF, flags=Flag.CERTIFY_CLIENTS, key=key)
        mine = {"public_keys": b64(key.public.record()), "login_secret": b64(login_secret)}
        await self.call("PUT", "/root", "admin", {"frk": b64(self.world.frk.public.record())}, 201)
        await self.call("PUT", "/me", "admin", mine, 200)
        await self.call("POST", "/certs", "admin", {"certs": [self.cert_of(self.admin)]}, 201)
        await self.post_escrow(1, [self.admin])
        await self.put_revocations([])

    async def approve_pending(self) -> list[str]:
        """The admin's approval queue (``GET /keys/pending``): each registered key is
        certified (FRK, ``certify_clients``) and given the firm keys. Returns who."""
        w = self.world
        pending = await self.call("GET", "/pending", "admin", status=200)
        approved = []
        for row in pending.json()["pending"]:
            user = row["user"]
            r = enc.Reader(base64url_decode(row["public_keys"]), b"RTKU")
            x_pk, ed_pk = r.fixed(32), r.fixed(32)
            r.done()
            w._serial += 1
            body = CertBody(
                self.slug, Role.STAFF, user, x_pk, ed_pk, w._serial, w.now_ms - 60_000, 0,
                Flag.CERTIFY_CLIENTS, (), FRK_ISSUER, w.frk.kid,
            )  # fmt: skip
            cert = issue(body, w.frk)
            kid = IdentityPublic(x_pk, ed_pk).kid
            info = WrapInfo(self.slug, FIRM_MATTER, w.fek.version, WrapKind.FIRM, user, kid)
            wrap = wrap_key(w.fek.wrapped_plaintext(), info, x_pk, self.admin, w.ids[self.admin])
            body_ = {"certs": [b64(cert.encode())], "wraps": [b64(wrap.encode())]}
            await self.call("POST", "/certs", "admin", body_, 201)
            approved.append(user)
        return approved

    def invite_client(self, user: str, matter: str | None = None) -> bytes:
        """An invite secret R and the identity it determines, certified by the admin
        for ``matter`` (default: the kit's), as the staff browser does for an invite."""
        secret = self.world.rng(32)
        key = IdentityKey.from_invite_secret(secret, self.slug, user)
        scopes = (matter or self.ref,)
        self.world.add_user(user, Role.CLIENT, issuer=self.admin, key=key, scopes=scopes)
        self.invite_secrets[user] = secret
        return secret

    def round_crypto(self, contact_id: int, welcome: str, delivery: str) -> dict[str, Any]:
        """The ``crypto`` object of an invite round by the admin (the client invited with
        ``invite_client``): the client's certificate, the next epoch with them, the
        encrypted welcome, and (portal delivery) the secret the server relays."""
        client = f"c{contact_id}"
        _, epoch = self.epoch_body((client,), creator=self.admin)
        thread = f"welcome-{contact_id}"
        sealed = self.seal_body(self.admin, thread, welcome, subject="Welcome")
        crypto: dict[str, Any] = {
            "delivery": delivery,
            "certs": [self.cert_of(client)],
            "epoch": epoch,
            "welcome": {str(contact_id): b64(sealed)},
        }
        if delivery == "portal":
            crypto["secrets"] = {str(contact_id): b64(self.invite_secrets[client])}
        return crypto

    def reader(self, user: str, matter: str | None = None) -> Directory:
        """``user``'s verifier with the matter's chain accepted and its keys unwrapped
        (the wraps as the epochs' creators made them)."""
        matter = matter or self.ref
        w = self.world
        d = w.directory()
        chain = w.chains[matter]
        staff = w.role(user) is Role.STAFF
        for epoch in sorted(chain.manifests):
            body = chain.manifests[epoch].body
            d.accept_manifest(chain.manifests[epoch], matter, w.now_ms)
            if staff:
                wrap = w.wrap_mek(matter, epoch, FEK_RECIPIENT, wrapper=body.creator)
                info = WrapInfo(self.slug, matter, epoch, WrapKind.MEK, FEK_RECIPIENT, w.fek.kid)
                d.unwrap(wrap, info, w.fek.x_sk, w.now_ms)
            elif body.member(user, w.ids[user].kid) is not None:
                wrap = w.wrap_mek(matter, epoch, user, wrapper=body.creator)
                d.unwrap(wrap, w.mek_info(matter, epoch, user), w.ids[user].x_sk, w.now_ms)
        if staff:
            d.add_firm_keys(w.fek)
        newest = chain.manifests[chain.epoch]
        d.accept_head(self.head(newest), matter, w.now_ms)  # writers need a fresh head
        return d

    def seal_body(
        self,
        sender: str,
        thread: str,
        text: str,
        *,
        subject: str = "",
        vis: Visibility = Visibility.PORTAL,
        matter: str | None = None,
        attachments: tuple[AttachmentDescriptor, ...] = (),
    ) -> bytes:
        """An envelope of a message body as a page seals it (real time, newest epoch)."""
        matter = matter or self.ref
        env = self.reader(sender, matter).seal_message(
            self.world.ids[sender], sender_id=sender, matter=matter, thread=thread,
            plaintext=Body(subject, text, attachments).encode(), ts_ms=real_now_ms(),
            ctype=CTYPE_BODY, vis=vis,
        )  # fmt: skip
        return env.encode()

    def open(self, reader: str, thread: str, blob: bytes) -> tuple[str, Body]:
        """An envelope verified and opened by ``reader``: its sender and body."""
        d = self.reader(reader)
        h, _, pt = d.open_message(blob, matter=self.ref, thread=thread, now_ms=real_now_ms())
        return h.sender, Body.decode(pt)

    def client_revocation(self, serial: int = 1, issuer: str | None = None) -> bytes:
        """The contact's key revoked by ``issuer`` (default: the staff member), ``RTVX``."""
        issuer = issuer or self.staff
        body = RevocationBody(
            self.slug,
            self.contact,
            self.world.ids[self.contact].kid,
            serial,
            self.world.now_ms,
            issuer,
            self.world.ids[issuer].kid,
        )
        return revoke(body, self.world.ids[issuer]).encode()

    def escrow(self, version: int) -> bytes:
        body = EscrowRecordBody(self.slug, version, self.world.fek.public.x_pk, self.world.now_ms)
        return sign_escrow_record(body, self.world.frk).encode()

    async def post_escrow(self, version: int, recipients: list[str]) -> None:
        wraps = [b64(self.world.wrap_firm_keys(r, wrapper=self.admin).encode()) for r in recipients]
        body = {"record": b64(self.escrow(version)), "wraps": wraps}
        await self.call("POST", "/escrow", "admin", body, 201)

    def revocation_list(self, version: int, entries: list[RevocationEntry]) -> bytes:
        now = self.world.now_ms
        body = RevocationListBody(self.slug, version, now, now + 30 * DAY_MS, tuple(entries))
        return sign_revocation_list(body, self.world.frk).encode()

    async def put_revocations(self, entries: list[RevocationEntry]) -> None:
        self.revocation_version += 1
        data = self.revocation_list(self.revocation_version, entries)
        await self.call("PUT", "/revocations", "admin", {"list": b64(data)}, 200)

    def head(
        self, manifest: Manifest, signer: str | None = None, ts_ms: int | None = None
    ) -> bytes:
        signer = signer or manifest.body.creator
        ts_ms = self.world.now_ms if ts_ms is None else ts_ms
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
            self.world.now_ms,
            CTYPE_TEXT,
        )
        mek = chain.meks[use]
        return seal_envelope(header, message_key(mek, self.slug, matter, use), b"hello", signer)


async def key_firm(
    kit: FirmKit, http: httpx.AsyncClient, *, set_up: bool = True, now_ms: int = NOW_MS
) -> KeyFirm:
    slug = await firm_slug(kit.db, kit.firm_id)
    kf = KeyFirm(kit, http, World(slug, now_ms=now_ms), slug)
    if set_up:
        await kf.set_up()
    return kf


def real_now_ms() -> int:
    """The time a browser checks records against (certificates, heads, lists)."""
    return int(time.time() * 1000)


def tamper(blob: bytes, at: int = -70) -> bytes:
    """One bit of an envelope flipped (by default inside the ciphertext, before the signature)."""
    b = bytearray(blob)
    b[at] ^= 0x01
    return bytes(b)

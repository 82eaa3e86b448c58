"""End-to-end encryption fixtures for browser tests, built with the library itself.

A :class:`KeyWorld` is one firm's keys made with ``rtportal.crypto`` (the
``World`` of tests/support/crypto/world.py, with the portal's rtp1 ids: ``s3``,
``c12``): the root key, staff certificates, the escrow key, an invited client's
identity derived from its invite secret, epochs of a matter, and envelopes
sealed the way a staff browser seals them. ``firm_json`` and ``matter_json``
are the answers of ``GET /api/v1/keys/firm`` and ``/matters/{ref}``
(docs/keys.md) for one reader.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from rtportal import base64url
from rtportal.crypto import encoding as enc
from rtportal.crypto.backup import Argon2Params, BackupContents, create_backup, derive_password_keys
from rtportal.crypto.certs import (
    FRK_ISSUER,
    CertBody,
    Flag,
    RevocationListBody,
    Role,
    issue,
    sign_revocation_list,
)
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import CTYPE_BODY, Body, Envelope, Visibility
from rtportal.crypto.keys import (
    EscrowRecordBody,
    IdentityKey,
    IdentityPublic,
    sign_escrow_record,
)
from rtportal.crypto.manifest import HeadBody, sign_head
from rtportal.crypto.wrap import FEK_RECIPIENT, FIRM_MATTER, WrapInfo, WrapKind, wrap_key
from tests.support.crypto.world import World

__all__ = ["KeyWorld", "b64"]


def b64(data: bytes) -> str:
    return base64url.encode(data)


class KeyWorld:
    """One firm's keys (see module docstring); ``now_ms`` is the real time."""

    def __init__(self, slug: str, staff: str) -> None:
        self.slug = slug
        self.staff = staff
        self.world = World(slug, now_ms=int(time.time() * 1000))
        self.world.add_user(staff, Role.STAFF, flags=Flag.CERTIFY_CLIENTS)
        self.invite_secrets: dict[str, bytes] = {}
        self.heads: dict[str, bytes] = {}

    @property
    def frk_link(self) -> str:
        return self.world.frk.public.link

    def invite_client(self, user: str, matter: str) -> bytes:
        """An invite secret R and the certified identity it determines (scoped to ``matter``)."""
        secret = self.world.rng(32)
        key = IdentityKey.from_invite_secret(secret, self.slug, user)
        self.world.add_user(user, Role.CLIENT, issuer=self.staff, key=key, scopes=(matter,))
        self.invite_secrets[user] = secret
        return secret

    # ---- the staff browser's calls, made with the real key directory API ----------
    def escrow_record(self) -> bytes:
        w = self.world
        body = EscrowRecordBody(self.slug, w.fek.version, w.fek.public.x_pk, w.now_ms)
        return sign_escrow_record(body, w.frk).encode()

    def revocation_list(self) -> bytes:
        now = self.world.now_ms
        body = RevocationListBody(self.slug, 1, now, now + 30 * 86_400_000, ())
        return sign_revocation_list(body, self.world.frk).encode()

    async def set_up_firm(self, http: httpx.AsyncClient, auth: dict[str, str]) -> None:
        """Firm set-up by the org admin who is ``self.staff``: root, own identity and
        certificate, escrow version 1 with the firm keys wrapped to them, revocation list."""
        w = self.world
        me = w.ids[self.staff]
        calls: list[tuple[str, str, dict[str, Any]]] = [
            ("PUT", "/api/v1/keys/root", {"frk": b64(w.frk.public.record())}),
            ("PUT", "/api/v1/keys/me", {"public_keys": b64(me.public.record())}),
            ("POST", "/api/v1/keys/certs", {"certs": [b64(w.certs[self.staff].encode())]}),
            (
                "POST",
                "/api/v1/keys/escrow",
                {
                    "record": b64(self.escrow_record()),
                    "wraps": [b64(w.wrap_firm_keys(self.staff, wrapper=self.staff).encode())],
                },
            ),
            ("PUT", "/api/v1/keys/revocations", {"list": b64(self.revocation_list())}),
        ]
        for method, path, body in calls:
            answer = await http.request(method, path, json=body, headers=auth)
            assert answer.status_code in (200, 201), (path, answer.text)

    async def approve_pending(self, http: httpx.AsyncClient, auth: dict[str, str]) -> list[str]:
        """The admin's approval queue (``GET /keys/pending``): each registered key is
        certified (FRK, ``certify_clients``) and given the firm keys. Returns who."""
        w = self.world
        pending = await http.get("/api/v1/keys/pending", headers=auth)
        assert pending.status_code == 200, pending.text
        approved = []
        for row in pending.json()["pending"]:
            user = row["user"]
            r = enc.Reader(base64url.decode(row["public_keys"], 4096) or b"", b"RTKU")
            public = IdentityPublic(r.fixed(32), r.fixed(32))
            r.done()
            w._serial += 1
            body = CertBody(
                self.slug, Role.STAFF, user, public.x_pk, public.ed_pk, w._serial,
                w.now_ms - 60_000, 0, Flag.CERTIFY_CLIENTS, (), FRK_ISSUER, w.frk.kid,
            )  # fmt: skip
            info = WrapInfo(self.slug, FIRM_MATTER, w.fek.version, WrapKind.FIRM, user, public.kid)
            wrap = wrap_key(
                w.fek.wrapped_plaintext(), info, public.x_pk, self.staff, w.ids[self.staff]
            )
            answer = await http.post(
                "/api/v1/keys/certs",
                json={"certs": [b64(issue(body, w.frk).encode())], "wraps": [b64(wrap.encode())]},
                headers=auth,
            )
            assert answer.status_code == 201, answer.text
            approved.append(user)
        return approved

    def round_crypto(
        self, matter: str, contact_id: int, welcome: str, delivery: str
    ) -> dict[str, Any]:
        """The ``crypto`` object of an invite round: the client's certificate, the next
        epoch (manifest, head, wraps to the escrow key and the client), the welcome."""
        client = f"c{contact_id}"
        epoch = self.new_epoch(matter, (client,))
        w = self.world
        chain = w.chains[matter]
        wraps = [
            w.wrap_mek(matter, epoch, FEK_RECIPIENT, wrapper=self.staff),
            w.wrap_mek(matter, epoch, client, wrapper=self.staff),
        ]
        thread = f"welcome-{contact_id}"
        crypto: dict[str, Any] = {
            "delivery": delivery,
            "certs": [b64(w.certs[client].encode())],
            "epoch": {
                "manifest": b64(chain.manifests[epoch].encode()),
                "head": b64(self.heads[matter]),
                "wraps": [b64(x.encode()) for x in wraps],
            },
            "welcome": {
                str(contact_id): b64(
                    self.seal(self.staff, matter, thread, welcome, subject="Welcome")
                )
            },
        }
        if delivery == "portal":
            crypto["secrets"] = {str(contact_id): b64(self.invite_secrets[client])}
        return crypto

    def add_staff(self, user: str) -> IdentityKey:
        return self.world.add_user(user, Role.STAFF, flags=Flag.CERTIFY_CLIENTS)

    def new_epoch(self, matter: str, members: tuple[str, ...]) -> int:
        manifest, _ = self.world.new_epoch(matter, members, creator=self.staff)
        body = manifest.body
        head = HeadBody(
            self.slug, matter, body.epoch, body.hash, self.world.now_ms, self.staff,
            self.world.ids[self.staff].kid,
        )  # fmt: skip
        self.heads[matter] = sign_head(head, self.world.ids[self.staff]).encode()
        return body.epoch

    def backup(self, user: str, password: str, kdf: dict[str, Any]) -> bytes:
        """The key backup a browser would have stored, under the account's ``kdf``."""
        salt = base64url.decode(kdf["salt"], 16)
        assert salt is not None
        params = Argon2Params(kdf["m_kib"], kdf["t"], kdf["p"])
        keys = derive_password_keys(password, salt, params)
        contents = BackupContents(self.world.ids[user], self.world.frk.public.fingerprint)
        return create_backup(self.slug, user, keys.kek, contents, params=params, salt=salt).encode()

    def reader(self, user: str, matter: str) -> Directory:
        """``user``'s verifier with the matter's chain accepted and its keys unwrapped."""
        w = self.world
        d = w.directory()
        chain = w.chains[matter]
        staff = w.role(user) is Role.STAFF
        for epoch in sorted(chain.manifests):
            body = chain.manifests[epoch].body
            d.accept_manifest(chain.manifests[epoch], matter, w.now_ms)
            if staff:
                wrap = w.wrap_mek(matter, epoch, FEK_RECIPIENT, wrapper=self.staff)
                info = WrapInfo(self.slug, matter, epoch, WrapKind.MEK, FEK_RECIPIENT, w.fek.kid)
                d.unwrap(wrap, info, w.fek.x_sk, w.now_ms)
            elif body.member(user, w.ids[user].kid) is not None:
                wrap = w.wrap_mek(matter, epoch, user, wrapper=self.staff)
                d.unwrap(wrap, w.mek_info(matter, epoch, user), w.ids[user].x_sk, w.now_ms)
        if staff:
            d.add_firm_keys(w.fek)
        if matter in self.heads:
            # a writer needs the signed head of the chain's last epoch (the lifecycle rules)
            d.accept_head(self.heads[matter], matter, w.now_ms)
        return d

    def seal(
        self,
        sender: str,
        matter: str,
        thread: str,
        text: str,
        *,
        subject: str = "",
        vis: Visibility = Visibility.PORTAL,
    ) -> bytes:
        d = self.reader(sender, matter)
        env = d.seal_message(
            self.world.ids[sender], sender_id=sender, matter=matter, thread=thread,
            plaintext=Body(subject, text, ()).encode(), ts_ms=int(time.time() * 1000),
            ctype=CTYPE_BODY, vis=vis,
        )  # fmt: skip
        return env.encode()

    def open(self, reader: str, matter: str, thread: str, blob: bytes) -> tuple[str, Body]:
        d = self.reader(reader, matter)
        h, _, pt = d.open_message(
            blob, matter=matter, thread=thread, now_ms=int(time.time() * 1000)
        )
        return h.sender, Body.decode(pt)

    # ---- the directory's answers (docs/keys.md, HTTP API) -------------------------
    def firm_json(self, user: str) -> dict[str, Any]:
        w = self.world
        staff_certs = [c for c in w.certs.values() if c.body.role is not Role.CLIENT]
        wraps = (
            [b64(w.wrap_firm_keys(user, wrapper=self.staff).encode())]
            if w.role(user) is Role.STAFF
            else []
        )
        return {
            "frk": b64(w.frk.public.record()),
            "revocations": {"list": None, "client": []},
            "escrow": [],
            "certs": [b64(c.encode()) for c in staff_certs],
            "wraps": wraps,
        }

    def matter_json(self, user: str, matter: str) -> dict[str, Any]:
        w = self.world
        chain = w.chains.get(matter)
        manifests = [chain.manifests[e] for e in sorted(chain.manifests)] if chain else []
        client_certs = [c for c in w.certs.values() if c.body.role is Role.CLIENT]
        wraps = []
        for m in manifests:
            epoch = m.body.epoch
            if w.role(user) is Role.STAFF:
                wraps.append(w.wrap_mek(matter, epoch, FEK_RECIPIENT, wrapper=self.staff))
            elif m.body.member(user, w.ids[user].kid) is not None:
                wraps.append(w.wrap_mek(matter, epoch, user, wrapper=self.staff))
        return {
            "manifests": [b64(m.encode()) for m in manifests],
            "head": b64(self.heads[matter]) if matter in self.heads else None,
            "certs": [b64(c.encode()) for c in client_certs],
            "wraps": [b64(x.encode()) for x in wraps],
        }


def tamper(blob: bytes, at: int = -70) -> bytes:
    """One bit of an envelope flipped (by default inside the ciphertext, before the signature)."""
    b = bytearray(blob)
    b[at] ^= 0x01
    return bytes(b)


def envelope_epoch(blob: bytes) -> int:
    return Envelope.decode(blob).header.epoch

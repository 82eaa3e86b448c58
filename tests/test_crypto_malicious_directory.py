"""A malicious directory (the part of the server clients trust for keys and membership).

``Directory`` here is the *server*: it stores and serves certificates, manifests,
wraps, message envelopes and attachment blobs. ``Client`` is what a browser or
bot does with what it is served, using only the pinned firm root key. Each
attack of the issue is played against the client, which must reject or flag it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import pytest

from rtportal.crypto import attachment as att
from rtportal.crypto.certs import Certificate, Flag, Role
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import CTYPE_BODY, AttachmentDescriptor, Body, Envelope
from rtportal.crypto.errors import (
    AttachmentInvalid,
    Replay,
    Rollback,
    SignatureInvalid,
    StaleEpochWrite,
    Uncertified,
    WrongContext,
)
from rtportal.crypto.keys import IdentityKey
from rtportal.crypto.manifest import Manifest, Member, sign_manifest
from rtportal.crypto.wrap import WrapInfo, WrapKind, wrap_key
from tests.support.crypto.world import NOW_MS, World

M, T = "M-1", "thread-1"


@dataclass
class Server:
    """An honest store; attacks are applied by editing what it holds or serves."""

    certs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, list[bytes]] = field(default_factory=dict)
    wraps: dict[tuple[str, int, str], bytes] = field(default_factory=dict)
    threads: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)
    blobs: dict[bytes, bytes] = field(default_factory=dict)


class Client:
    """A member's client: pins the FRK from its invite link, trusts nothing else."""

    def __init__(self, world: World, user: str, server: Server) -> None:
        self.w, self.user, self.s = world, user, server
        self.key = world.ids[user]
        self.dir = Directory(world.firm, world.frk.public)
        self._applied: dict[str, int] = {}

    def load_certs(self) -> None:
        # issuers first: staff and bots (root-issued), then clients
        order = sorted(
            self.s.certs.items(), key=lambda kv: Certificate.decode(kv[1]).body.role is Role.CLIENT
        )
        for user, blob in order:
            body = self.dir.add_certificate(blob, NOW_MS).user
            if body != user:
                raise WrongContext(f"served {body}'s certificate as {user}'s")

    def sync(self, matter: str) -> None:
        """Accept new manifests in order and unwrap our key for each epoch we belong to."""
        served = self.s.manifests.get(matter, [])
        for blob in served[self._applied.get(matter, 0) :]:
            body = self.dir.accept_manifest(blob, matter, NOW_MS)
            if body.member(self.user, self.key.kid) is not None:
                info = WrapInfo(
                    self.w.firm, matter, body.epoch, WrapKind.MEK, self.user, self.key.kid
                )
                wrap = self.s.wraps[(matter, body.epoch, self.user)]
                self.dir.unwrap(wrap, info, self.key.x_sk, NOW_MS)
        self._applied[matter] = len(served)

    def post(
        self,
        matter: str,
        thread: str,
        text: str,
        attachments: tuple[AttachmentDescriptor, ...] = (),
    ) -> bytes:
        env = self.dir.seal_message(self.key, sender_id=self.user, matter=matter, thread=thread,
                                    plaintext=Body("", text, attachments).encode(), ts_ms=NOW_MS,
                                    ctype=CTYPE_BODY)  # fmt: skip
        blob = env.encode()
        self.s.threads.setdefault((matter, thread), []).append(blob)
        return blob

    def read(self, matter: str, thread: str) -> list[tuple[str, Role, Body]]:
        out = []
        for blob in self.s.threads.get((matter, thread), []):
            h, cert, pt = self.dir.open_message(blob, matter=matter, thread=thread, now_ms=NOW_MS)
            out.append((h.sender, cert.role, Body.decode(pt)))
        return out

    def download(self, d: AttachmentDescriptor) -> bytes:
        return att.decrypt_bytes(d.fk, d.att_id, self.s.blobs[d.att_id], ct_sha256=d.ct_sha256)


def publish_epoch(world: World, server: Server, matter: str, members: tuple[str, ...]) -> Manifest:
    m, _ = world.new_epoch(matter, members)
    server.manifests.setdefault(matter, []).append(m.encode())
    for u in members:
        server.wraps[(matter, m.body.epoch, u)] = world.wrap_mek(matter, m.body.epoch, u).encode()
    return m


@pytest.fixture
def setup() -> tuple[World, Server]:
    w = World()
    w.add_user("staff-1", Role.STAFF, flags=Flag.CERTIFY_CLIENTS)
    w.add_user("bot-1", Role.BOT, scopes=(M,))
    w.add_user("client-1", Role.CLIENT)
    w.add_user("client-2", Role.CLIENT)
    s = Server(certs={u: c.encode() for u, c in w.certs.items()})
    publish_epoch(w, s, M, ("client-1", "client-2"))
    return w, s


def client(w: World, s: Server, user: str) -> Client:
    c = Client(w, user, s)
    c.load_certs()
    c.sync(M)
    return c


def test_honest_server_round_trip(setup: tuple[World, Server]) -> None:
    w, s = setup
    a, b = client(w, s, "client-1"), client(w, s, "client-2")
    a.post(M, T, "hello")
    assert [(u, body.text) for u, _, body in b.read(M, T)] == [("client-1", "hello")]


def test_injected_member_rejected(setup: tuple[World, Server]) -> None:
    """The server adds its own key as a reader of epoch 2 (it cannot sign as staff)."""
    w, s = setup
    a = client(w, s, "client-1")
    m2 = publish_epoch(w, s, M, ("client-1", "client-2"))
    spy = IdentityKey.generate()
    body = replace(m2.body, members=(*m2.body.members, Member("spy", spy.kid, Role.CLIENT)))
    s.manifests[M][-1] = Manifest(body, m2.sig).encode()  # original signature kept
    with pytest.raises(SignatureInvalid):
        a.sync(M)
    # and a manifest signed by a key the server certified itself is not certified by the FRK
    fake_staff = IdentityKey.generate()
    body = replace(body, creator="staff-9", creator_kid=fake_staff.kid)
    s.manifests[M][-1] = sign_manifest(body, fake_staff).encode()
    with pytest.raises(Uncertified):
        a.sync(M)
    assert a.dir.current_epoch(M) == 1


def test_substituted_public_key_rejected(setup: tuple[World, Server]) -> None:
    """The server swaps client-2's certificate for one carrying its own key."""
    w, s = setup
    evil_key = IdentityKey.generate()
    c2 = Certificate.decode(s.certs["client-2"])
    body = replace(c2.body, x_pk=evil_key.public.x_pk, ed_pk=evil_key.public.ed_pk)
    s.certs["client-2"] = Certificate(body, c2.sig).encode()
    with pytest.raises(SignatureInvalid):
        Client(w, "client-1", s).load_certs()
    # serving another user's (valid) certificate under client-2's name is caught too
    s.certs["client-2"] = s.certs["client-1"]
    with pytest.raises(WrongContext):
        Client(w, "client-1", s).load_certs()


def test_message_moved_to_another_thread_rejected(setup: tuple[World, Server]) -> None:
    w, s = setup
    a, b = client(w, s, "client-1"), client(w, s, "client-2")
    blob = a.post(M, T, "for thread 1 only")
    s.threads[(M, "thread-2")] = [blob]
    with pytest.raises(WrongContext):
        b.read(M, "thread-2")
    env = Envelope.decode(blob)
    s.threads[(M, "thread-2")] = [
        replace(env, header=replace(env.header, thread="thread-2")).encode()
    ]
    with pytest.raises(SignatureInvalid):
        b.read(M, "thread-2")


def test_replayed_message_rejected(setup: tuple[World, Server]) -> None:
    w, s = setup
    a, b = client(w, s, "client-1"), client(w, s, "client-2")
    blob = a.post(M, T, "pay the invoice")
    b.read(M, T)
    s.threads[(M, T)].append(blob)
    with pytest.raises(Replay):
        b.read(M, T)


def test_swapped_attachment_rejected(setup: tuple[World, Server]) -> None:
    w, s = setup
    a, b = client(w, s, "client-1"), client(w, s, "client-2")
    descs = []
    for content in (b"real passport scan", b"other file"):
        att_id, fk, blob = att.encrypt_bytes(content)
        s.blobs[att_id] = blob
        descs.append(AttachmentDescriptor(att_id, fk, hashlib.sha256(blob).digest(), len(content),
                                          "scan.pdf", "application/pdf"))  # fmt: skip
    a.post(M, T, "see attached", (descs[0],))
    ((_, _, body),) = b.read(M, T)
    assert b.download(body.attachments[0]) == b"real passport scan"
    s.blobs[descs[0].att_id] = s.blobs[descs[1].att_id]  # another attachment's blob
    with pytest.raises(AttachmentInvalid):
        b.download(body.attachments[0])


def test_stale_epoch_after_removal_flagged(setup: tuple[World, Server]) -> None:
    """client-2 is removed (epoch 2); the server then hides epoch 2 from client-1."""
    w, s = setup
    a = client(w, s, "client-1")
    publish_epoch(w, s, M, ("client-1",))
    a.sync(M)
    assert a.dir.current_epoch(M) == 2
    # a fresh view served by the server with only epoch 1 is a rollback for this client
    first = s.manifests[M][0]
    with pytest.raises(Rollback):
        a.dir.accept_manifest(first, M, NOW_MS)
    # and the client will not encrypt under epoch 1, whatever the server says is current
    with pytest.raises(StaleEpochWrite):
        a.dir.seal_message(a.key, sender_id="client-1", matter=M, thread=T, plaintext=b"x",
                           ts_ms=NOW_MS, ctype=CTYPE_BODY, epoch=1)  # fmt: skip
    # the removed client gets nothing it can read from the new epoch
    gone = client(w, s, "client-2")
    a.post(M, T, "after removal")
    with pytest.raises(WrongContext):
        gone.read(M, T)
    # nor can the server hand it client-1's wrap for the new epoch
    info = WrapInfo(w.firm, M, 2, WrapKind.MEK, "client-2", w.ids["client-2"].kid)
    with pytest.raises(WrongContext):
        gone.dir.unwrap(s.wraps[(M, 2, "client-1")], info, w.ids["client-2"].x_sk, NOW_MS)


def test_server_made_wrap_rejected(setup: tuple[World, Server]) -> None:
    """The server wraps a key of its choosing to a client: no staff signature."""
    w, s = setup
    a = client(w, s, "client-1")
    server_key = IdentityKey.generate()
    info = WrapInfo(w.firm, M, 1, WrapKind.MEK, "client-1", w.ids["client-1"].kid)
    forged = wrap_key(b"\x00" * 32, info, w.ids["client-1"].public.x_pk, "staff-1", server_key)
    with pytest.raises(Uncertified):  # its own key id has no certificate
        a.dir.unwrap(forged.encode(), info, w.ids["client-1"].x_sk, NOW_MS)
    posing = replace(forged, wrapper_kid=w.ids["staff-1"].kid)
    posing = replace(posing, sig=server_key.sign(posing.sig_input()))
    with pytest.raises(SignatureInvalid):  # posing as staff-1's key id
        a.dir.unwrap(posing.encode(), info, w.ids["client-1"].x_sk, NOW_MS)

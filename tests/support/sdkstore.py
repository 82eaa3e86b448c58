"""An in-memory key directory for the SDK's sans-I/O tests: records in the API's shapes.

``Store`` holds what the server's key directory would store and answers
``firm()`` and ``matter()`` as ``GET /keys/firm`` and ``GET
/keys/matters/{ref}`` do; ``view`` and ``read`` run the client's sync and
message checks over it. ``set_up`` makes a firm with its keys through
``rtportal.sdk.firmkeys``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtportal import base64url
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import Envelope
from rtportal.crypto.keys import FirmRootKey, IdentityKey
from rtportal.crypto.rng import Rng
from rtportal.sdk import epochs, firmkeys, messages, sync
from rtportal.sdk.actor import Actor
from rtportal.sdk.state import TrustState

__all__ = ["FIRM", "NOW", "M", "Store", "b64", "read", "set_up", "view"]

FIRM = "acme"
M = "AAAA0002"
NOW = 1_800_000_000_000


def b64(data: bytes) -> str:
    return base64url.encode(data)


@dataclass
class Store:
    """What the key directory stores, in the shapes its API serves."""

    frk: str
    revocations: list[str] = field(default_factory=list)
    client_revocations: list[str] = field(default_factory=list)
    escrow: list[str] = field(default_factory=list)
    certs: list[str] = field(default_factory=list)
    client_certs: list[str] = field(default_factory=list)
    firm_wraps: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)
    wraps: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def firm(self) -> dict[str, Any]:
        return {
            "frk": self.frk,
            "revocations": {"list": self.revocations[-1], "client": self.client_revocations},
            "escrow": self.escrow,
            "certs": self.certs,
            "wraps": self.firm_wraps,
        }

    def matter(self) -> dict[str, Any]:
        return {
            "manifests": self.manifests,
            "head": self.heads[-1] if self.heads else None,
            "certs": self.client_certs,
            "wraps": self.wraps,
        }

    def epoch(self, bundle: epochs.EpochBundle) -> None:
        body = bundle.body()
        self.manifests.append(str(body["manifest"]))
        self.heads.append(str(body["head"]))
        self.wraps.extend(str(w) for w in body["wraps"])  # type: ignore[attr-defined]

    def post(self, env: Envelope, kind: str = "message") -> int:
        seq = len(self.events) + 1
        payload = {"thread": env.header.thread}
        self.events.append(
            {"matter": M, "seq": seq, "kind": kind, "payload": payload, "blob": b64(env.encode())}
        )
        return seq


def view(store: Store, actor: Actor, state: TrustState, pin: bytes | None = None) -> Directory:
    d = sync.verify_firm(store.firm(), state, actor, NOW, pin_frk=pin)
    sync.verify_matter(
        d, store.matter(), state, actor, M, NOW, client_revocations=store.client_revocations
    )
    return d


def read(store: Store, actor: Actor, state: TrustState) -> list[messages.Item]:
    d = view(store, actor, state)
    out = [messages.open_event(d, state.matter(M), e, NOW) for e in store.events]
    return [i for i in out if i is not None]


def set_up(rng: Rng) -> tuple[FirmRootKey, Actor, Store, TrustState]:
    """A firm set up by its admin ``s1``: the FRK, the admin, the store, the admin's state."""
    frk = FirmRootKey.generate(rng)
    admin = Actor(FIRM, "s1", IdentityKey.generate(rng))
    setup = firmkeys.firm_setup(frk, admin, now_ms=NOW, rng=rng)
    store = Store(str(setup.root_body()["frk"]))
    store.certs += setup.certs_body()["certs"]  # type: ignore[arg-type]
    store.escrow.append(str(setup.escrow_body()["record"]))
    store.firm_wraps += setup.escrow_body()["wraps"]  # type: ignore[arg-type]
    store.revocations.append(str(setup.revocations_body()["list"]))
    state = TrustState(FIRM, "s1", frk.public.fingerprint)
    view(store, admin, state)
    return frk, admin, store, state

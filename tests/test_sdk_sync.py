"""The client's sync refuses what a lying directory serves (rtportal.sdk.sync + state).

Each case starts from a consistent store (``tests/support/sdkstore.py``), has
the client verify it once (pinning what it saw), then changes what the
"server" serves: another root key, an older revocation list or escrow
version, a rolled-back or forked chain, a firm key that is not the signed
escrow key, an older certificate, a message re-served at another seq.
"""

from __future__ import annotations

import pytest

from rtportal.crypto.envelope import Body
from rtportal.crypto.errors import ChainBroken, Replay, Rollback
from rtportal.crypto.keys import FirmEscrowKey, FirmRootKey, IdentityKey
from rtportal.crypto.rng import DeterministicRng
from rtportal.crypto.wrap import FIRM_MATTER, WrapInfo, WrapKind, wrap_key
from rtportal.errors import CryptoInvalid
from rtportal.sdk import epochs, firmkeys, invitekeys, messages, records, sync
from rtportal.sdk.actor import Actor
from rtportal.sdk.errors import PinMismatch
from rtportal.sdk.state import TrustState
from tests.support.sdkstore import FIRM, NOW, M, Store, b64, set_up, view


def _with_matter() -> tuple[FirmRootKey, Actor, Store, TrustState, DeterministicRng]:
    rng = DeterministicRng(b"sdk-sync")
    frk, admin, store, state = set_up(rng)
    for n in range(3):
        d = view(store, admin, state)
        body = Body("s", f"welcome {n}")
        rnd = invitekeys.invite_round(
            d, admin, matter=M, welcomes=[(10 + n, body)], now_ms=NOW, rng=rng
        )
        store.client_certs += rnd.crypto_body()["certs"]  # type: ignore[arg-type]
        store.epoch(rnd.epoch)
        store.post(rnd.welcome[10 + n], "welcome")
    view(store, admin, state)
    assert state.matter(M).epoch == 3
    return frk, admin, store, state, rng


def test_another_root_key_is_refused() -> None:
    _, admin, store, state, rng = _with_matter()
    other = FirmRootKey.generate(rng)
    store.frk = b64(other.public.record())
    with pytest.raises(PinMismatch):
        view(store, admin, state)


def test_a_rolled_back_or_forked_chain_is_refused() -> None:
    _, admin, store, state, rng = _with_matter()
    served = list(store.manifests)
    store.manifests = served[:2]
    store.heads = store.heads[:2]
    store.wraps = []
    with pytest.raises(Rollback):
        view(store, admin, state)
    # a fork: epochs 1-2 as before, another epoch 3 (a different member)
    store.manifests = served[:2]
    fork_state = TrustState(FIRM, "s1", state.frk_fingerprint)
    d = view(store, admin, fork_state)
    stranger = IdentityKey.generate(rng)
    cert = invitekeys.client_certificate(
        admin, matter=M, user="c99", public=stranger.public, now_ms=NOW
    )
    d.add_certificate(cert, NOW)
    store.client_certs.append(b64(cert.encode()))
    store.epoch(epochs.next_epoch(d, admin, matter=M, members=[], now_ms=NOW, rng=rng))
    with pytest.raises(ChainBroken):
        view(store, admin, state)


def test_older_revocation_list_or_escrow_version_is_refused() -> None:
    frk, admin, store, state, rng = _with_matter()
    first_list = store.revocations[-1]
    rot = firmkeys.rotate_escrow(
        frk,
        admin,
        current=records.decode_revocation_list(sync.decode(first_list)),
        leaving=[],
        remaining=[("s1", admin.identity.public)],
        now_ms=NOW,
        rng=rng,
    )
    store.revocations.append(str(rot.revocations_body()["list"]))
    store.escrow.append(str(rot.escrow_body()["record"]))
    store.firm_wraps += rot.escrow_body()["wraps"]  # type: ignore[arg-type]
    view(store, admin, state)
    assert (state.revocation_version, state.escrow_version) == (2, 2)
    store.revocations.append(first_list)  # served as the newest again
    with pytest.raises(Rollback):
        view(store, admin, state)
    store.revocations.pop()
    store.escrow.pop()
    with pytest.raises(Rollback):
        view(store, admin, state)


def test_a_firm_key_that_is_not_the_signed_escrow_key_is_refused() -> None:
    _, admin, store, state, rng = _with_matter()
    fake = FirmEscrowKey.generate(FIRM, 1, rng)
    info = WrapInfo(FIRM, FIRM_MATTER, 1, WrapKind.FIRM, admin.uid, admin.kid)
    wrap = wrap_key(
        fake.wrapped_plaintext(),
        info,
        admin.identity.public.x_pk,
        admin.uid,
        admin.identity,
        rng=rng,
    )
    store.firm_wraps = [b64(wrap.encode())]
    with pytest.raises(CryptoInvalid, match=r"escrow|FRK-signed|firm root key signed"):
        view(store, admin, state)


def test_an_older_certificate_than_one_seen_is_refused() -> None:
    _, admin, store, state, _ = _with_matter()
    key = next(iter(state.cert_serials))
    state.cert_serials[key] += 1
    with pytest.raises(PinMismatch):
        view(store, admin, state)


def test_a_message_served_again_at_another_seq_is_a_replay() -> None:
    _, admin, store, state, _ = _with_matter()
    d = view(store, admin, state)
    first = store.events[0]
    assert messages.open_event(d, state.matter(M), first, NOW) is not None
    assert messages.open_event(view(store, admin, state), state.matter(M), first, NOW)  # re-read
    with pytest.raises(Replay):
        messages.open_event(view(store, admin, state), state.matter(M), dict(first, seq=50), NOW)

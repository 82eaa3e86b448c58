"""Tag names sealed in the browser open in Python and the other way round.

The browser keyring's ``sealTagName`` / ``openTagName`` (static/shared/tagnames.js)
run in Node on a real ``Keyring`` that syncs a firm directory built here with
the Python library (tests/support/tagnames.mjs); the Python side is the SDK's
``rtportal.sdk.tags``. Both directions, the same bytes from the same random
input, and what must not open: another tag's name, a name under another firm
internal key, an altered name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from rtportal.base64url import decode, encode
from rtportal.crypto.certs import Flag, Role
from rtportal.crypto.envelope import Envelope
from rtportal.crypto.errors import DecryptFailed, WrongContext
from rtportal.crypto.keys import FirmEscrowKey, IdentityKey
from rtportal.sdk.actor import Actor
from rtportal.sdk.tags import new_tag_id, open_tag_name, seal_tag_name
from tests.support.crypto.world import World
from tests.support.procs import service_unavailable

REPO = Path(__file__).resolve().parent.parent
DRIVER = REPO / "tests" / "support" / "tagnames.mjs"
FIRM = "harbour-law"
NAME = "Urgent <img src=x onerror=alert(1)> — «visa» 🛂"


def b64(data: bytes) -> str:
    return encode(data)


def unb64(text: str) -> bytes:
    data = decode(text, 4096)
    assert data is not None
    return data


def world(keys: dict[str, IdentityKey] | None = None) -> World:
    """A firm at the real time (the page checks the revocation list's freshness)
    with two staff members; ``keys``: the same identities certified in another firm."""
    w = World(FIRM, now_ms=int(time.time() * 1000))
    for user in ("s1", "s2"):
        key = (keys or {}).get(user)
        w.add_user(user, Role.STAFF, flags=Flag.CERTIFY_CLIENTS, key=key)
    return w


def directory_of(w: World, user: str) -> dict[str, Any]:
    """What ``GET /api/v1/keys/firm`` serves ``user``: root, list, escrow, certs, their wrap."""
    return {
        "frk": b64(w.frk.public.record()),
        "revocations": {"list": b64(w.revocation_list().encode()), "client": []},
        "escrow": [b64(r.encode()) for r in w.escrow.values()],
        "certs": [b64(c.encode()) for c in w.certs.values()],
        "wraps": [b64(w.wrap_firm_keys(user, wrapper="s1").encode())],
    }


def run_js(w: World, user: str, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``user``'s browser keyring, synced from ``w``'s directory, runs ``ops``."""
    node = shutil.which("node")
    if node is None:
        service_unavailable("node (Node.js 20+)")
    assert node is not None
    key = w.ids[user]
    payload = {
        "firm": w.firm,
        "user": user,
        "x_sk": b64(key.x_sk),
        "ed_sk": b64(key.ed_sk),
        "frk_fingerprint": b64(w.frk.public.fingerprint),
        "directory": directory_of(w, user),
        "ops": ops,
    }
    p = subprocess.run(
        [node, str(DRIVER)],
        cwd=REPO,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr[-4000:]
    out = json.loads(p.stdout)
    # the keyring verified the directory and holds the firm keys: nothing refused
    assert out["sync"] == {"ready": True} and out["problems"] == [], out
    results: list[dict[str, Any]] = out["results"]
    assert len(results) == len(ops)
    return results


def actor(w: World, user: str, fek: FirmEscrowKey | None = None) -> Actor:
    fek = fek or w.fek
    return Actor(w.firm, user, w.ids[user], {fek.version: fek})


def py_open(w: World, reader: Actor, blob: bytes, tag: str) -> str:
    return open_tag_name(w.directory(), reader, blob, tag=tag, now_ms=w.now_ms)


def py_seal(w: World, sender: str, tag: str, name: str, rng: Any = os.urandom) -> bytes:
    env = seal_tag_name(
        w.directory(), actor(w, sender), tag=tag, name=name, now_ms=w.now_ms, rng=rng
    )
    return env.encode()


def test_a_name_sealed_in_the_browser_opens_in_python_and_the_other_way() -> None:
    w = world()
    t_js, t_py = new_tag_id(), new_tag_id()
    py_blob = py_seal(w, "s2", t_py, NAME)
    sealed, opened = run_js(
        w,
        "s1",
        [
            {"op": "seal", "tag": t_js, "name": NAME},
            {"op": "open", "tag": t_py, "blob": b64(py_blob)},
        ],
    )
    assert sealed["ok"] and opened == {"ok": True, "value": NAME}
    js_blob = unb64(sealed["value"])
    # another staff member reads the browser's name with the SDK: same firm key, staff cert
    assert py_open(w, actor(w, "s2"), js_blob, t_js) == NAME
    h = Envelope.decode(js_blob).header
    assert (h.firm, h.matter, h.thread, h.sender, h.epoch, h.vis.value, h.ctype) == (
        FIRM,
        "#tag",
        t_js,
        "s1",
        w.fek.version,
        1,
        "rtp1/text",
    )
    assert h.parent is None and h.sender_kid == w.ids["s1"].kid
    assert NAME.encode() not in js_blob and b"onerror" not in js_blob


def test_the_same_random_input_gives_the_same_bytes_as_the_sdk() -> None:
    w = world()
    tag = new_tag_id()
    stream = os.urandom(28)  # msg_id (16), then the GCM nonce (12): the order both take them
    handed = iter([stream[:16], stream[16:]])

    def rng(n: int) -> bytes:
        part = next(handed)
        assert len(part) == n
        return part

    expected = py_seal(w, "s1", tag, NAME, rng=rng)
    (sealed,) = run_js(
        w, "s1", [{"op": "seal", "tag": tag, "name": NAME, "now_ms": w.now_ms, "rand": b64(stream)}]
    )
    assert sealed["ok"], sealed
    assert unb64(sealed["value"]) == expected


def test_another_tag_another_firm_key_or_an_altered_name_does_not_open() -> None:
    w = world()
    # the same people in a firm whose internal key is another: their certificates verify,
    # the signature verifies, only the key differs
    other = world(keys={u: w.ids[u] for u in ("s1", "s2")})
    t1, t2 = new_tag_id(), new_tag_id()
    py_blob = py_seal(w, "s2", t1, NAME)
    altered = bytearray(py_blob)
    altered[-70] ^= 1  # inside the ciphertext
    results = run_js(
        w,
        "s1",
        [
            {"op": "seal", "tag": t1, "name": NAME},
            {"op": "open", "tag": t2, "blob": b64(py_blob)},  # shown as another tag
            {"op": "open", "tag": t1, "blob": b64(bytes(altered))},
            {"op": "open", "tag": t1, "blob": b64(b"not an envelope")},
        ],
    )
    sealed, wrong_tag, tampered, garbage = results
    assert wrong_tag == {"ok": False, "code": "crypto_wrong_context"}
    assert tampered == {"ok": False, "code": "crypto_signature"}
    assert not garbage["ok"] and garbage["code"].startswith("crypto_")
    js_blob = unb64(sealed["value"])
    with pytest.raises(WrongContext):
        py_open(w, actor(w, "s2"), js_blob, t2)
    with pytest.raises(DecryptFailed):
        py_open(w, actor(w, "s2", fek=other.fek), js_blob, t1)
    # the browser in the other firm: same identity, other FIR
    (foreign,) = run_js(other, "s1", [{"op": "open", "tag": t1, "blob": b64(py_blob)}])
    assert foreign == {"ok": False, "code": "crypto_decrypt"}
    # and its own name does not open here either
    (theirs,) = run_js(other, "s1", [{"op": "seal", "tag": t1, "name": NAME}])
    with pytest.raises(DecryptFailed):
        py_open(w, actor(w, "s2"), unb64(theirs["value"]), t1)

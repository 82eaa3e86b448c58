"""rtp1 crypto benchmark, Python side (``cryptography`` + argon2-cffi). Not a test.

Prints one JSON object per line and asserts nothing about time::

    python bench/crypto_bench.py [--quick]

Operations share their names with the JavaScript twin (bench/crypto_bench.mjs):
message_seal_1k, message_open_1k (certificate lookup, membership, replay,
AES-GCM), attachment_seal_5m / attachment_open_5m (streaming, 64 KiB pieces,
ct_sha256 checked), wrap_mek, unwrap_mek (signature + HPKE + commitment),
backup_unlock (Argon2id 64 MiB t=3 p=1 + HKDF + AES-GCM).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# the test firm lives in tests/support (test tooling, not the installed package)
if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rtportal.crypto import attachment as att
from rtportal.crypto import backup as bk
from rtportal.crypto.certs import Flag, Role
from rtportal.crypto.envelope import CTYPE_BODY, Body, Envelope
from rtportal.crypto.rng import DeterministicRng
from tests.support.crypto.world import NOW_MS, World

MIB = 1024 * 1024
M, T = "M-0001", "t-1"


def emit(op: str, samples: list[float], **extra: Any) -> None:
    s = sorted(samples)
    mean = statistics.fmean(s)
    line: dict[str, Any] = {
        "lang": "py",
        "runtime": f"python {platform.python_version()}",
        "op": op,
        "n": len(s),
        "mean_ms": round(mean, 4),
        "median_ms": round(s[len(s) // 2], 4),
        "p95_ms": round(s[min(len(s) - 1, int(0.95 * len(s)))], 4),
        "min_ms": round(s[0], 4),
        "ops_per_s": round(1000 / mean, 2),
        **extra,
    }
    if "bytes" in extra:
        line["mib_per_s"] = round(extra["bytes"] / MIB / (mean / 1000), 2)
    print(json.dumps(line), flush=True)


def bench(op: str, n: int, fn: Callable[[int], object], **extra: Any) -> None:
    for i in range(min(3, n)):  # warm-up, same as the JS twin
        fn(i)
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - t0) * 1000)
    emit(op, samples, **extra)


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    w = World(rng=DeterministicRng(b"bench"))
    w.add_user("staff-1", Role.STAFF, flags=Flag.CERTIFY_CLIENTS)
    w.add_user("client-1", Role.CLIENT)
    w.new_epoch(M, ("client-1",))
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    machine = {
        "lang": "py",
        "runtime": f"python {platform.python_version()}",
        "op": "machine",
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "loadavg": [round(x, 2) for x in load],
    }
    print(json.dumps(machine))

    # ---- 1 KiB message: the writer is staff-1, the reader client-1
    writer = w.reader("staff-1", M)
    reader = w.reader("client-1", M)
    body = Body("Bench", "x" * (1024 - 16)).encode()
    n_msg = 50 if quick else 500
    sealed: list[bytes] = []

    def seal(_: int) -> None:
        env = writer.seal_message(w.ids["staff-1"], sender_id="staff-1", matter=M, thread=T,
                                  plaintext=body, ts_ms=NOW_MS, ctype=CTYPE_BODY)  # fmt: skip
        sealed.append(env.encode())

    bench("message_seal_1k", n_msg + 3, seal, bytes=len(body))
    it = iter(sealed)

    def open_(_: int) -> None:
        reader.open_message(next(it), matter=M, thread=T, now_ms=NOW_MS)

    bench("message_open_1k", n_msg, open_, bytes=len(body))
    assert Envelope.decode(sealed[0]).header.sender == "staff-1"

    # ---- 5 MiB attachment in 64 KiB pieces through the incremental objects
    size = 5 * MIB
    piece = os.urandom(65536)
    parts: list[bytes] = []
    digest = [b""]
    ids = [b"", b""]  # (att_id, fk) of the last sealed blob

    def att_seal(_: int) -> None:
        e = att.AttachmentEncryptor()  # fresh (att_id, fk) each time, as in use
        ids[:] = [e.att_id, e.fk]
        parts.clear()
        parts.append(e.header)
        for _o in range(0, size, len(piece)):
            parts.append(e.update(piece))
        parts.append(e.finalize())
        digest[0] = e.ct_sha256

    def att_open(_: int) -> None:
        d = att.AttachmentDecryptor(ids[1], ids[0], ct_sha256=digest[0], size=size)
        for p in parts:
            d.update(p)
        d.finalize()

    n_att = 3 if quick else 10
    bench("attachment_seal_5m", n_att, att_seal, bytes=size)
    assert hashlib.sha256(b"".join(parts)).digest() == digest[0]
    bench("attachment_open_5m", n_att, att_open, bytes=size)

    # ---- key wrap / unwrap (the reader's directory checks cert, signature, commitment)
    n_wrap = 50 if quick else 300
    wraps: list[bytes] = []
    bench("wrap_mek", n_wrap, lambda _: wraps.append(w.wrap_mek(M, 1, "client-1").encode()))
    wit = iter(wraps)
    info = w.mek_info(M, 1, "client-1")
    x_sk = w.ids["client-1"].x_sk
    bench("unwrap_mek", n_wrap, lambda _: reader.unwrap(next(wit), info, x_sk, NOW_MS))

    # ---- backup unlock with the real parameters
    salt = os.urandom(16)
    keys = bk.derive_password_keys("correct horse battery staple", salt, bk.DEFAULT_PARAMS)
    blob = bk.create_backup("firm-1", "client-1", keys.kek,
                            bk.BackupContents(w.ids["client-1"], w.frk.public.fingerprint),
                            params=bk.DEFAULT_PARAMS, salt=salt).encode()  # fmt: skip
    bench("backup_unlock", 3 if quick else 10,
          lambda _: bk.open_backup(blob, "correct horse battery staple"),
          m_kib=65536, t=3, p=1)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])

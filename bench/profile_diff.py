"""One phase of a cProfile run: the later of two cumulative dumps minus the earlier.

    python -m bench.profile_diff EARLY LATE [--per N] [--top K] [--match rtportal]

``bench.servers.rtportal_traced`` (``$BENCH_CPROFILE``) dumps cumulative stats
every 5 s; the difference of two dumps taken inside one load step is that
step alone. ``--per N`` divides call counts by N (e.g. the messages sent in
between) so a function's calls per message read directly.
"""

from __future__ import annotations

import argparse
import marshal
from typing import Any

Key = tuple[str, int, str]


def _load(path: str) -> dict[Key, tuple[int, float, float]]:
    with open(path, "rb") as f:
        raw: dict[Key, Any] = marshal.load(f)
    return {k: (v[1], v[2], v[3]) for k, v in raw.items()}  # ncalls, tottime, cumtime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("early")
    ap.add_argument("late")
    ap.add_argument("--per", type=float, default=1.0)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--match", default="")
    ap.add_argument("--sort", choices=("tottime", "calls", "cumtime"), default="tottime")
    args = ap.parse_args()
    a, b = _load(args.early), _load(args.late)
    rows = []
    for k, (n, tt, ct) in b.items():
        n0, tt0, ct0 = a.get(k, (0, 0.0, 0.0))
        if n - n0 <= 0 or args.match not in k[0] + k[2]:
            continue
        rows.append((k, n - n0, tt - tt0, ct - ct0))
    col = {"tottime": 2, "calls": 1, "cumtime": 3}[args.sort]
    rows.sort(key=lambda r: r[col], reverse=True)
    total = sum(r[2] for r in rows)
    print(f"total tottime {total:.3f} s; calls per {args.per:g}")
    print(f"{'calls/N':>9} {'tot s':>7} {'cum s':>7}  function")
    for (file, line, name), n, tt, ct in rows[: args.top]:
        short = file.split("site-packages/")[-1].split("/work/main/")[-1]
        print(f"{n / args.per:9.2f} {tt:7.3f} {ct:7.3f}  {short}:{line}({name})")


if __name__ == "__main__":
    main()

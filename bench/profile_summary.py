"""Where the server's time goes: a summary of py-spy's collapsed stacks.

    python -m bench.profile_summary bench/results/profile-rtportal-sqlite-rooms.txt

Prints the functions with the most *self* samples and the most *inclusive*
samples (a function counted once per stack it appears in), as shares of all
samples, keeping only frames whose file is in rtportal/ or a library, so the
answer to "where does a delivered message's CPU go" is one screen.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

__all__ = ["summarize"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "/rtportal/", "/bench/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/rtportal/":
                path = "rtportal/" + path
            break
    return f"{m['func']} ({path})"


def _package(frame: str) -> str:
    """``func (pkg/mod.py)`` -> ``pkg``; the event loop's own C code is named."""
    if frame.startswith("Runner.run ") or frame.startswith("run_until_complete"):
        return "event loop (uvloop C code: socket I/O, callbacks)"
    if frame.startswith("_connection_worker_thread "):
        return "aiosqlite worker thread (SQLite C library)"
    inner = frame[frame.rfind("(") + 1 : -1]
    return inner.split("/", 1)[0] if "/" in inner else inner


def summarize(collapsed: str, top: int = 30) -> str:
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    by_rtportal: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        self_samples[frames[-1]] += count
        by_package[_package(frames[-1])] += count
        owner = next((f for f in reversed(frames) if "(rtportal/" in f), "(no rtportal frame)")
        by_rtportal[owner] += count
        for frame in set(frames):
            inclusive[frame] += count
    if total == 0:
        return "no samples\n"
    out = [f"{total} samples", "", "by package of the leaf frame (where the CPU is spent):"]
    out += [f"{100 * n / total:6.1f}  {k}" for k, n in by_package.most_common(15)]
    out += ["", "by innermost rtportal function on the stack (who asked for it):"]
    out += [f"{100 * n / total:6.1f}  {k}" for k, n in by_rtportal.most_common(25)]
    out += ["", "self %  function"]
    out += [f"{100 * n / total:6.1f}  {f}" for f, n in self_samples.most_common(top)]
    out += ["", "incl %  function"]
    out += [f"{100 * n / total:6.1f}  {f}" for f, n in inclusive.most_common(top * 2)]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(summarize(f.read()), end="")

"""A worker's memory of thread openers: the hot path's one read per reply, saved.

Every reply needs its thread's opener (``items.find_opener``: kind, item,
``to``, sender), and a busy thread is replied to many times a second: one
indexed read per reply per batch was the write path's largest cost. The
opener of a thread is the thread's first ``message`` or ``note`` by seq, and
the log is append-only with seqs given in commit order per matter, so once
a read has found it, it is that opener for good: every worker may keep it.

Not kept: no opener (the thread may be opened later), and ``welcome-<n>``
threads (their opener is the welcome event until the first reply, then that
reply: it changes). Bounded by entry count, least recently used out first
(policy **evict-oldest**); an entry is a few hundred bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # stored, never built here (rtportal.threads.items uses this module)
    from rtportal.threads.items import Found

__all__ = ["MAX_OPENERS", "OpenerCache"]

MAX_OPENERS = 20_000  # about 6 MiB at most per worker


class OpenerCache:
    """``(matter id, thread) -> Found`` of openers read from the log."""

    def __init__(self, max_entries: int = MAX_OPENERS) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, str], Found] = OrderedDict()

    def get(self, matter_id: int, thread: str) -> Found | None:
        key = (matter_id, thread)
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def keep(self, matter_id: int, thread: str, found: Found | None) -> None:
        """Remember ``found``, read from the log, if it can never change (above)."""
        if found is None or found.kind == "welcome" or thread.startswith("welcome-"):
            return
        self._entries[(matter_id, thread)] = found
        self._entries.move_to_end((matter_id, thread))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

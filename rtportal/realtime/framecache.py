"""The per-worker cache of encoded event frames, shared by every connection.

Fan-out machinery: an event is encoded once per viewer class and the text
handed to every connection of that class. Lives below the websocket layer
so that the per-worker ``Runtime`` can hold it; the frame format itself is
the websocket layer's (``rtportal.ws.protocol.FrameCache`` binds it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from rtportal.events.audience import personal, view_for
from rtportal.events.cursor import CursorCodec
from rtportal.events.event import StoredEvent
from rtportal.principal import Principal
from rtportal.settings import DEFAULT_FRAME_CACHE_BYTES

__all__ = ["FrameCache"]


class FrameCache:
    """LRU of encoded ``event`` frames keyed by (matter_id, seq, viewer class).

    ``encode(view, event, cls)`` turns a view (``audience.view_for``) of
    ``event`` for viewer class ``cls`` into the frame text: the websocket
    layer passes its ``event`` frame encoder (``rtportal.ws.protocol
    .FrameCache``), so this module knows no wire format. ``cursors`` is the
    worker's cursor codec (``rtportal.events.cursor``): contacts' frames
    carry an event token instead of the seq, deterministic per event, so the
    one-text-per-class sharing holds for them too.

    With 1,000 members in a matter, JSON-encoding an event per connection
    would dominate CPU; encoding once per viewer class and reusing the text
    makes fan-out O(connections) cheap string handoffs. ``""`` caches "this
    class may not see the event".

    Bounded by ``max_bytes`` (the texts' lengths plus ``ENTRY_COST`` per
    entry) and by ``size`` entries: the least recently used entries go
    first. A fan-out uses an entry within one loop iteration, so eviction
    only costs a re-encode for a later backlog read.

    (matter_id, seq) names one event only within one database, so use one
    cache per app (``Runtime.frames``); each entry also remembers
    ``created_at`` and ``redacted`` and is re-encoded if they do not match.
    An event changes once at most: a delete erases an item's blobs
    (``redacted``). Every read after that comes from the database with
    ``redacted`` set (the hub keeps no events; the broker carries only new
    ones), so the old frame is never served again, on any worker, without
    an eviction message: its entry just misses and is replaced.

    Thread items a client sees only when they name them (``audience.personal``:
    ``see_applicants`` off) and addressed kinds are keyed per contact.
    """

    ENTRY_COST = 200  # bytes of key, tuple and dict slot per entry, roughly

    def __init__(
        self,
        encode: Callable[[dict[str, Any], StoredEvent, str], str],
        cursors: CursorCodec,
        size: int = 8192,
        max_bytes: int = DEFAULT_FRAME_CACHE_BYTES,
    ) -> None:
        self._encode = encode
        self.cursors = cursors
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._frames: OrderedDict[tuple[int, int, str], tuple[str, bool, str]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        """What the cached entries count against ``max_bytes``."""
        return self._bytes

    def frame(
        self, event: StoredEvent, principal: Principal, cls: str, see_applicants: bool = False
    ) -> str:
        """The frame of ``event`` for ``principal`` (of viewer class ``cls``);
        ``see_applicants``: their membership of the matter's (``view_for``)."""
        base = cls
        if cls == "portal" and personal(event, see_applicants):
            # Seen only by some contacts: one entry per contact.
            cls = f"portal:{principal.id}"
        key = (event.matter_id, event.seq, cls)
        frames = self._frames
        entry = frames.get(key)
        if entry is not None and entry[0] == event.created_at and entry[1] == event.redacted:
            self.hits += 1
            frames.move_to_end(key)
            return entry[2]
        self.misses += 1
        view = view_for(event, principal, see_applicants)
        text = "" if view is None else self._encode(view, event, base)
        if entry is not None:
            self._bytes -= len(entry[2]) + self.ENTRY_COST
        frames[key] = (event.created_at, event.redacted, text)
        self._bytes += len(text) + self.ENTRY_COST
        while self._bytes > self._max_bytes or len(frames) > self._size:
            _, (_, _, old) = frames.popitem(last=False)
            self._bytes -= len(old) + self.ENTRY_COST
        return text

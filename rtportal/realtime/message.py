"""The broker message format: topics, and an event as published on its matter's topic."""

from __future__ import annotations

from rtportal import wirejson
from rtportal.events.event import StoredEvent

__all__ = ["CTL_TOPIC", "encode_event_message", "matter_topic", "peek_event_message"]

CTL_TOPIC = "ctl"  # the control plane: closes of a principal's or a session's connections


def matter_topic(matter_id: int) -> str:
    """The broker topic of a matter's events."""
    return f"m:{matter_id}"


def encode_event_message(event: StoredEvent) -> bytes:
    """``b"<matter_id>:<seq>:" + JSON(to_wire())`` as published on ``m:<id>``.

    Why a plain header before the JSON: every worker receives its own
    publishes back (Redis pub/sub has no "not to me"), and most messages a
    worker reads are such echoes or duplicates; the header lets it drop
    them without decoding the event (``peek_event_message``).
    """
    body = wirejson.dumpb(event.to_wire())
    return b"%d:%d:%b" % (event.matter_id, event.seq, body)


def peek_event_message(data: bytes) -> tuple[int, int, bytes]:
    """``(matter_id, seq, body)`` from the header; ``ValueError`` if malformed."""
    head_m, sep_m, rest = data.partition(b":")
    head_s, sep_s, body = rest.partition(b":")
    if not (sep_m and sep_s and head_m.isdigit() and head_s.isdigit()):
        raise ValueError("not an event message")
    matter_id, seq = int(head_m), int(head_s)
    if seq < 1:
        raise ValueError("bad seq")
    return matter_id, seq, body

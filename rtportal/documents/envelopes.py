"""The envelopes that name an item's current files, handed out with the item.

A file's name and key are in the envelope of the ``document`` (upload) or
``document_shared`` event that added it (docs/documents.md); the server
never reads them. A page learns them from the events it has loaded, which
for an old upload may be none: the checklist then showed a file it could
neither name nor download. So each item's body carries, for its current
round, those events' envelopes (``uploads``), each with its files and its
position in the log as the caller knows events by (staff a ``seq``, a
client the event's ``cursor``): a page opens it exactly as the event, and
the keyring's replay guard sees one message at one position either way.

Whoever sees an item sees these events (the item's visibility and the
document events' are one rule: ``models_documents.client_sees_item``).
Bounded: per item its newest envelopes, at most ``MAX_UPLOADS`` of them and
``MAX_UPLOAD_BYTES`` together (the newest one always: at most ``rows.MAX_BLOB``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal import base64url
from rtportal.db.models import Event, Matter
from rtportal.db.models_documents import DocumentFile, DocumentItem
from rtportal.jsonlimits import stored_payload

__all__ = ["MAX_UPLOADS", "MAX_UPLOAD_BYTES", "Position", "uploads_of"]

MAX_UPLOADS = 20  # envelopes per item in one answer (its newest)
# An item's envelopes' bytes in one answer (its newest within it, the newest always):
# a client padding each upload's envelope to ``rows.MAX_BLOB`` would otherwise make
# each of up to ``rows.MAX_ITEMS`` items carry MAX_UPLOADS * 16 KiB in every read.
# Descriptors of a file or two take a few hundred bytes.
MAX_UPLOAD_BYTES = 64 * 1024

Position = Callable[[int], dict[str, Any]]
"""A seq as the caller knows events by: ``{"seq": n}`` or ``{"cursor": token}``."""

_KINDS = ("document", "document_shared")


async def uploads_of(
    session: AsyncSession, matter: Matter, rows: Sequence[DocumentItem], position: Position
) -> dict[int, list[dict[str, Any]]]:
    """Per item id: its current round's envelopes, oldest first."""
    current = {r.id: r.round for r in rows}
    if not current:
        return {}
    seqs: dict[int, set[int]] = defaultdict(set)
    for item_id, round_, seq in await session.execute(
        select(DocumentFile.item_id, DocumentFile.round, DocumentFile.event_seq).where(
            DocumentFile.item_id.in_(list(current)), DocumentFile.event_seq.is_not(None)
        )
    ):
        if round_ == current[int(item_id)] and seq is not None:
            seqs[int(item_id)].add(int(seq))
    newest = {s for item_seqs in seqs.values() for s in sorted(item_seqs)[-MAX_UPLOADS:]}
    if not newest:
        return {}
    # Sizes first: the blobs read are only those an answer carries.
    sizes = {
        int(seq): int(size or 0)
        for seq, size in await session.execute(
            select(Event.seq, func.length(Event.blob)).where(
                Event.matter_id == matter.id,
                Event.seq.in_(sorted(newest)),
                Event.kind.in_(_KINDS),
                Event.blob.is_not(None),
            )
        )
    }
    chosen: dict[int, list[int]] = {}
    for item_id, item_seqs in seqs.items():
        picked: list[int] = []
        total = 0
        for seq in sorted(item_seqs)[-MAX_UPLOADS:][::-1]:  # newest first
            if seq not in sizes:
                continue
            total += sizes[seq]
            if picked and total > MAX_UPLOAD_BYTES:
                break
            picked.append(seq)
        chosen[item_id] = picked[::-1]
    wanted = {s for picked in chosen.values() for s in picked}
    events = {
        int(seq): (str(kind), payload, blob)
        for seq, kind, payload, blob in await session.execute(
            select(Event.seq, Event.kind, Event.payload, Event.blob).where(
                Event.matter_id == matter.id, Event.seq.in_(sorted(wanted))
            )
        )
    }
    out: dict[int, list[dict[str, Any]]] = {}
    for item_id, picked in chosen.items():
        found = []
        for seq in picked:
            kind, payload, blob = events.get(seq, ("", "", None))
            if blob is None:
                continue
            files = stored_payload(payload).get("files")
            found.append(
                {
                    **position(seq),
                    "kind": kind,
                    "files": files if isinstance(files, list) else [],
                    "blob": base64url.encode(blob),
                }
            )
        out[item_id] = found
    return out

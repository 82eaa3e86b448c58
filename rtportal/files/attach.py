"""An item that names files: the files are claimed in the transaction that writes it.

A ``message`` or ``note`` send with ``payload.files`` (docs/files.md
"Attaching") is written alone (the group commit's ``WriteAlone``, after
the thread rules prepared it): the matter's row is locked, the files are
claimed (``item`` set where it is unset or already this item: a retry of
the send claims its own files again), and the event is appended, in one
transaction. A file that is not a stored file of this matter uploaded by
the sender and free (or this item's) is ``no_such_file``: nothing is
written. Edits and deletes go on to ``rtportal.threads.acts.ActWriter``; a
delete that removed an item then removes its files (rows and blobs) after
its commit, which gives their room back. A client's item is queued for
review (``rtportal.reviews``) in the same transaction, its files with it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select

from rtportal.db import Database
from rtportal.db.models import Matter, StoredFile
from rtportal.events.commitparts import WriteAlone
from rtportal.events.event import StoredEvent
from rtportal.events.guards import hold
from rtportal.events.send import Send
from rtportal.files.quota import lock_matter
from rtportal.files.rows import MAX_FILES, claim, distinct_ids, valid_file_id
from rtportal.files.storage import Storage
from rtportal.principal import Principal
from rtportal.reviews.enqueue import ReviewCompanion, enqueue, wants
from rtportal.settings import Settings
from rtportal.threads.acts import append_send
from rtportal.threads.items import ACT_KINDS, ITEM_SEND_KINDS

__all__ = ["AttachWriter", "file_ids", "names_files"]

log = logging.getLogger("rtportal.files")


def names_files(send: Send) -> bool:
    """Is ``send`` an item naming files (written by ``AttachWriter``)?"""
    return (
        send.kind in ITEM_SEND_KINDS and isinstance(send.payload, dict) and "files" in send.payload
    )


def file_ids(payload: dict[str, Any]) -> list[str]:
    """``payload.files``: 1 to ``MAX_FILES`` distinct file ids, else ``bad_files``."""
    return distinct_ids(
        payload.get("files"), valid_file_id, MAX_FILES, "payload.files", "bad_files"
    )


class AttachWriter:
    """``WriteAlone`` of the group commit: items naming files here, edits and deletes
    to ``acts`` (then a deleted item's files are removed)."""

    __slots__ = ("acts", "db", "reviews", "settings", "storage")

    def __init__(
        self,
        db: Database,
        settings: Settings,
        storage: Storage,
        acts: WriteAlone,
        reviews: ReviewCompanion | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.storage = storage
        self.acts = acts
        # The group commit's review companion: its live counts (None: no review inbox).
        self.reviews = reviews

    async def __call__(
        self, principal: Principal, matter: Matter, send: Send, guard: int | None = None, /
    ) -> tuple[StoredEvent, bool]:
        if send.kind in ACT_KINDS:
            event, created = await self.acts(principal, matter, send, guard)
            if created and send.kind == "delete":
                await self._drop_files(matter.id, str(send.payload.get("item")))
            return event, created
        files = file_ids(send.payload)
        item = str(send.payload.get("item"))
        async with self.db.write() as session:
            await lock_matter(session, matter.id)
            await hold(session, matter.id, guard)  # its checks' remembered facts still hold
            await claim(session, principal, matter.id, files, item)  # refused: rolled back
            event, created = await append_send(session, principal, matter, send, self.settings)
            queued = None
            if created and self.reviews is not None and wants(principal, send):
                thread = send.payload.get("thread")
                queued = await enqueue(
                    session,
                    matter,
                    "message",
                    item,
                    principal.id,
                    thread=thread if isinstance(thread, str) else None,
                    files=files,
                )
        if queued is not None and self.reviews is not None and self.reviews.counts is not None:
            self.reviews.counts.touch(queued)  # committed
        return event, created

    async def _drop_files(self, matter_id: int, item: str) -> None:
        """A deleted item's files: rows, then blobs (a blob left by a failure is
        unreachable: no row names it)."""
        try:
            async with self.db.write() as session:
                ids = list(
                    (
                        await session.execute(
                            select(StoredFile.id).where(
                                StoredFile.matter_id == matter_id, StoredFile.item == item
                            )
                        )
                    ).scalars()
                )
                if ids:
                    await session.execute(delete(StoredFile).where(StoredFile.id.in_(ids)))
            for file_id in ids:
                await self.storage.delete(file_id)
        except Exception:
            # The delete is committed; its files are no longer served (readable.py).
            log.exception("removing a deleted item's files failed")

"""Who may download a file: those who see the item that attaches it.

The thread rule of ``rtportal.events.audience.view_for`` through
``rtportal.threads.items.Found.seen_by``: staff and bots; a client the
item's thread is addressed to, its sender, or a co-applicant whose
membership sees applicants. A file no item attaches yet is its uploader's
only; a deleted item's files are nobody's. A file a document of the
checklist holds (``item`` = ``doc.<ref>``, docs/documents.md) is read by
those who see that document (``client_sees_item``). Every refusal is the same
``not_found`` as an unknown id: no answer tells a file exists.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access.membership import can_view
from rtportal.db.models import StoredFile
from rtportal.db.models_documents import DocumentItem, client_sees_item
from rtportal.errors import NotFound
from rtportal.files.rows import stored_file
from rtportal.principal import Principal
from rtportal.threads.items import find_item

__all__ = ["DOCUMENT_PREFIX", "readable_file"]

# The ``item`` of a file a checklist document holds (rtportal.documents.rows),
# never a thread item's id (those begin with an rtp1 id).
DOCUMENT_PREFIX = "doc."


def _no_file() -> NotFound:
    return NotFound("no such file")


async def readable_file(
    session: AsyncSession, principal: Principal, matter_ref: str, file_id: str
) -> StoredFile:
    """The stored file ``file_id`` of the matter if ``principal`` may read it, else ``NotFound``."""
    matter, sees_applicants = await can_view(session, principal, matter_ref)
    row = await stored_file(session, matter.id, file_id)
    if row is None:
        raise _no_file()
    if row.item is None:
        if (row.uploader_kind, row.uploader_id) != (principal.kind, principal.id):
            raise _no_file()
        return row
    if row.item.startswith(DOCUMENT_PREFIX):
        query = select(DocumentItem.id).where(
            DocumentItem.matter_id == matter.id,
            DocumentItem.ref == row.item[len(DOCUMENT_PREFIX) :],
        )
        if not principal.is_staff:
            query = query.where(client_sees_item(principal.id, sees_applicants))
        if (await session.scalars(query)).first() is None:
            raise _no_file()
        return row
    found = await find_item(session, matter.id, row.item)
    if found is None or found.redacted or not found.seen_by(principal, sees_applicants):
        raise _no_file()
    return row

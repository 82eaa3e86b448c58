"""Ids, limits and the checked parts of the checklist's requests.

An item's public id (``ref``) and its question thread are 16 random bytes
each, as 22 characters of base64url, chosen by the server: neither tells
how many items exist, and a thread name nobody can guess is no oracle
(docs/threads.md "Ids"). A file an item holds is claimed with the file
row's ``item`` set to ``doc.<ref>``, which no thread item's id can be (those
begin with an rtp1 id, ``s3.``, ``c12.``).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from rtportal.errors import BadRequest, NotFound
from rtportal.files.readable import DOCUMENT_PREFIX
from rtportal.files.rows import MAX_FILES, distinct_ids, valid_file_id

__all__ = [
    "FILE_ITEM_PREFIX",
    "MAX_BATCH",
    "MAX_BLOB",
    "MAX_ITEMS",
    "MAX_REASON",
    "MAX_TO",
    "fields",
    "file_ids",
    "file_item",
    "int_id",
    "new_ref",
    "no_item",
    "refs",
    "valid_ref",
]

FILE_ITEM_PREFIX = DOCUMENT_PREFIX
MAX_ITEMS = 200  # a matter's checklist
MAX_BATCH = 50  # items one request names (the event's ``items``)
MAX_TO = 20  # clients one request is addressed to (as a thread's ``to``)
MAX_BLOB = 16 * 1024  # an upload's or a share's descriptors envelope (20 files)
MAX_REASON = 8 * 1024  # a rejection's reason envelope
_REF = re.compile(r"[A-Za-z0-9_-]{22}")
_MAX_ID = 2**31 - 1


def new_ref() -> str:
    return secrets.token_urlsafe(16)


def valid_ref(value: Any) -> bool:
    return isinstance(value, str) and _REF.fullmatch(value) is not None


def file_item(ref: str) -> str:
    """The ``files.item`` of a file held by the item ``ref``."""
    return f"{FILE_ITEM_PREFIX}{ref}"


def no_item() -> NotFound:
    """One answer for an unknown item, another matter's, and one the caller may not see."""
    return NotFound("no such document", reason="no_such_document")


def fields(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"unknown fields: {sorted(unknown)}", reason="unknown_field")


def int_id(value: Any, field: str, reason: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= _MAX_ID:
        raise BadRequest(f"{field}: an id", reason=reason, field=field)
    return value


def refs(value: Any, field: str = "items") -> list[str]:
    """1 to ``MAX_BATCH`` distinct item ids, else ``bad_request`` ``bad_items``."""
    return distinct_ids(value, valid_ref, MAX_BATCH, field, "bad_items")


def file_ids(value: Any) -> list[str]:
    """1 to ``MAX_FILES`` distinct file ids, else ``bad_request`` ``bad_files``
    (the rule of ``payload.files``, docs/files.md)."""
    return distinct_ids(value, valid_file_id, MAX_FILES, "files", "bad_files")

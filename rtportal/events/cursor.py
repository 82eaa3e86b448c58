"""Cursors, parsed and encoded in exactly one place (protocol v2, docs/protocol.md).

A cursor names a position in one matter's log: "events after seq N". Who
sees which spelling:

* **staff and bots** (they see every event) get and send the integer seq
  (0 … 2^53−1, exact in JavaScript numbers): a JSON integer in frames and
  bodies, its decimal spelling in a URL query.
* **contacts** never see a seq: the gaps between the seqs of the events
  they may see would count the staff-only events between them. They get
  and send an opaque **token**: 22 characters of unpadded base64url, one
  AES-256 block of (matter id, seq, salt) under a key derived from the
  server secret. A token decrypts only under this server's key, names its
  own matter (a token of another matter, or a tampered one, decrypts to a
  foreign matter id and is refused) and is not comparable: two tokens say
  nothing about how far apart they are.

Two kinds of token, both accepted wherever a cursor is read:

* an **event cursor** (``cursor_for``) names an event the contact may see
  (``event.cursor``, ``ack.cursor``): deterministic per (matter, seq), salt
  0, so one encoded frame per event is shared by every contact (the frame
  cache) and a client can recognise an event it already has;
* a **position** (``position_for``: ``head``, ``next``, ``prev``, a
  resync's ``after``) may point after events the contact may not see: it
  gets a random non-zero salt, so it never equals an event cursor and two
  positions are not comparable (equality would tell "nothing hidden in
  between").

The API (other modules use nothing else)::

    codec = CursorCodec(settings.secret_key)        # one per worker (the frame cache's)
    codec.parse(value, viewer, matter_id)           # JSON value -> Cursor (None, 0: the start)
    codec.parse_query(text, viewer, matter_id)      # URL query text -> Cursor
    codec.cursor_for(viewer, matter_id, seq)        # int (staff) | event token (contact)
    codec.position_for(viewer, matter_id, seq)      # int (staff) | position token (contact)
    codec.event_view(view, viewer, matter_id)       # a view with "seq" replaced for contacts

``viewer`` is a ``Principal`` or a viewer class (``"staff"``/``"portal"``).
Every refusal is ``InvalidCursor`` (code ``invalid_cursor``, a
``bad_request``) with a stable ``details.reason``: ``not_a_cursor`` (wrong
type or spelling), ``token_required`` (a contact sent an integer),
``seq_required`` (staff sent a token), ``foreign_cursor`` (a token that is
not of this matter on this server: forged, tampered or another matter's;
indistinguishable on purpose).

``FeedCursor`` is the staff activity feed's position across matters: the
global ``events.id`` of the last row shown, sent as 22 characters of
base64url (one AES block under a key derived from the server secret: an id
padded with zeros). It is opaque on purpose: the global id would tell a
reader how much every firm on the server wrote between two pages; the block
tells nothing, and a cursor that was not made by this server (its padding
does not decrypt to zeros) is ``InvalidCursor``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import struct
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from rtportal import base64url
from rtportal.errors import BadRequest, InvalidCursor, RtPortalError
from rtportal.principal import Principal

__all__ = ["MAX_SEQ", "TOKEN_RE", "Cursor", "CursorCodec", "FeedCursor", "Viewer", "check_shape"]

# The largest seq a cursor may name: events.seq (and the PostgreSQL append
# function's types) are 32-bit integers, so a larger cursor could name no
# event, and bound as a query parameter it would fail in the driver. Well
# inside 2^53 - 1, the largest integer JavaScript keeps exact.
MAX_SEQ = 2**31 - 1
_CURSOR_RE = re.compile(r"0|[1-9][0-9]{0,15}")
# 16 bytes in unpadded base64url: 21 characters and one that carries 2 bits.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{21}[AQgw]")
_SEQ_BITS = 53
_SALT_MAX = (1 << (64 - _SEQ_BITS)) - 1  # 11 bits beside the seq
_SEQ_MASK = (1 << _SEQ_BITS) - 1
_BLOCK = struct.Struct(">QQ")
_KEY_LABEL = b"rtportal cursor token v2"

Viewer = Principal | Literal["staff", "portal"]


def _invalid(message: str, reason: str) -> InvalidCursor:
    return InvalidCursor(message, reason=reason)


@dataclass(frozen=True, slots=True)
class Cursor:
    after: int

    @classmethod
    def from_string(cls, text: str | None) -> Cursor:
        """Parse a staff cursor of a URL query; ``None`` or ``""`` means the start."""
        if text is None or text == "":
            return cls(0)
        if not isinstance(text, str) or _CURSOR_RE.fullmatch(text) is None:
            raise _invalid("cursor must be a non-negative decimal seq", "not_a_cursor")
        value = int(text)
        if value > MAX_SEQ:
            raise _invalid("cursor is out of range", "not_a_cursor")
        return cls(value)

    @classmethod
    def from_json(cls, value: object, where: str = "cursor") -> Cursor:
        """Parse a staff cursor given as a JSON value: an integer 0 … 2^31−1, never a string."""
        # bool is an int subclass in Python; true/false is never a cursor.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
            raise _invalid(f"{where}: must be an integer from 0 to {MAX_SEQ}", "not_a_cursor")
        return cls(value)

    def to_json(self) -> int:
        """The cursor as a JSON value in a frame or body (what ``from_json`` reads)."""
        return self.after

    def __str__(self) -> str:
        return str(self.after)


_FEED_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_ID_MAX = 2**63 - 1


def _feed_cipher(secret: bytes) -> Cipher[modes.ECB]:
    # One block per cursor, never repeated structure inside it: ECB is the
    # block cipher as a keyed permutation, which is all a cursor needs.
    key = hashlib.sha256(b"rtportal/feed-cursor\x00" + secret).digest()
    return Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305


@dataclass(frozen=True, slots=True)
class FeedCursor:
    """The feed's keyset position: rows with an ``events.id`` below ``before``."""

    before: int

    @classmethod
    def from_string(cls, text: str | None, secret: bytes) -> FeedCursor | None:
        """Parse ``?before=``; ``None`` or ``""`` is the first page (``None``)."""
        if text is None or text == "":
            return None
        if not isinstance(text, str) or _FEED_RE.fullmatch(text) is None:
            raise InvalidCursor("feed cursor: 22 characters of base64url")
        try:
            block = base64url.decode(text, 16, "before")
        except BadRequest:
            raise InvalidCursor("feed cursor: not one of this server's cursors") from None
        assert block is not None and len(block) == 16
        decryptor = _feed_cipher(secret).decryptor()
        plain = decryptor.update(block) + decryptor.finalize()
        value = int.from_bytes(plain[:8], "big")
        if plain[8:] != bytes(8) or not 1 <= value <= _ID_MAX:
            raise InvalidCursor("feed cursor: not one of this server's cursors")
        return cls(value)

    def to_string(self, secret: bytes) -> str:
        encryptor = _feed_cipher(secret).encryptor()
        block = encryptor.update(self.before.to_bytes(8, "big") + bytes(8)) + encryptor.finalize()
        return base64url.encode(block)


def check_shape(value: object, where: str) -> None:
    """Refuse a JSON cursor that is neither a staff seq nor token-shaped (frame parsers:
    which one the viewer must send is checked once the viewer is known)."""
    if isinstance(value, str):
        if TOKEN_RE.fullmatch(value) is None:
            raise _invalid(f"{where}: not a cursor token", "not_a_cursor")
        return
    Cursor.from_json(value, where)


def _is_staff(viewer: Viewer) -> bool:
    if isinstance(viewer, str):
        return viewer == "staff"
    return viewer.is_staff


class CursorCodec:
    """Encodes and decodes cursor tokens under one key (see the module docstring)."""

    __slots__ = ("_decrypt", "_encrypt")

    def __init__(self, secret_key: bytes) -> None:
        key = hmac.new(secret_key, _KEY_LABEL, hashlib.sha256).digest()
        # ECB over exactly one block is a keyed permutation of (matter, seq, salt):
        # the encryptor is stateless, so one object serves every call.
        cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305 (one block, see above)
        self._encrypt = cipher.encryptor()
        self._decrypt = cipher.decryptor()

    @classmethod
    def ephemeral(cls) -> CursorCodec:
        """A codec under a random key (tests and tools that run no server)."""
        return cls(secrets.token_bytes(32))

    # --- tokens -------------------------------------------------------------

    def _token(self, matter_id: int, seq: int, salt: int) -> str:
        if not 0 <= seq <= MAX_SEQ or not 0 <= matter_id < 2**64:
            raise ValueError("cursor out of range")  # a server bug, never client input
        block = _BLOCK.pack(matter_id, (salt << _SEQ_BITS) | seq)
        return base64url.encode(self._encrypt.update(block))

    def event_token(self, matter_id: int, seq: int) -> str:
        """The event cursor of (matter, seq): the same text every time."""
        return self._token(matter_id, seq, 0)

    def position_token(self, matter_id: int, seq: int) -> str:
        """A position (matter, seq): a fresh random salt each time."""
        return self._token(matter_id, seq, 1 + secrets.randbelow(_SALT_MAX))

    def seq_of(self, token: object, matter_id: int, where: str = "cursor") -> int:
        """The seq a token of ``matter_id`` names; ``InvalidCursor`` for anything else."""
        owner, seq = self.open(token, where)
        if owner != matter_id:
            raise _invalid(f"{where}: not a cursor of this matter", "foreign_cursor")
        return seq

    def open(self, token: object, where: str = "cursor") -> tuple[int, int]:
        """(matter id, seq) inside a well-formed token, unchecked: for tools and
        tests that hold the key. Requests are read with ``seq_of`` (their matter)."""
        if not isinstance(token, str) or TOKEN_RE.fullmatch(token) is None:
            raise _invalid(f"{where}: not a cursor token", "not_a_cursor")
        try:
            raw = base64url.decode(token, 16)
        except RtPortalError:
            raise _invalid(f"{where}: not a cursor token", "not_a_cursor") from None
        if raw is None or len(raw) != 16:
            raise _invalid(f"{where}: not a cursor token", "not_a_cursor")
        owner, low = _BLOCK.unpack(self._decrypt.update(raw))
        return int(owner), int(low & _SEQ_MASK)

    # --- by viewer (the API) -----------------------------------------------------

    def parse(self, value: object, viewer: Viewer, matter_id: int, where: str = "after") -> Cursor:
        """A JSON cursor sent by ``viewer`` for ``matter_id``; ``None`` is the start."""
        if value is None:
            return Cursor(0)
        if _is_staff(viewer):
            if isinstance(value, str):
                raise _invalid(f"{where}: staff cursors are integer seqs", "seq_required")
            return Cursor.from_json(value, where)
        if value == 0 and not isinstance(value, bool):
            return Cursor(0)  # "from the start" names no position: allowed to everyone
        if not isinstance(value, str):
            raise _invalid(f"{where}: a cursor token (a string) is required", "token_required")
        return Cursor(self.seq_of(value, matter_id, where))

    def parse_query(
        self, text: str | None, viewer: Viewer, matter_id: int, where: str = "cursor"
    ) -> Cursor:
        """A cursor of a URL query; ``None`` or ``""`` is the start."""
        if text is None or text == "":
            return Cursor(0)
        if _is_staff(viewer):
            if TOKEN_RE.fullmatch(text) is not None and _CURSOR_RE.fullmatch(text) is None:
                raise _invalid(f"{where}: staff cursors are integer seqs", "seq_required")
            return Cursor.from_string(text)
        if text == "0":
            return Cursor(0)
        if _CURSOR_RE.fullmatch(text) is not None:
            raise _invalid(f"{where}: a cursor token is required", "token_required")
        return Cursor(self.seq_of(text, matter_id, where))

    def cursor_for(self, viewer: Viewer, matter_id: int, seq: int) -> int | str:
        """The cursor naming the event ``seq`` (which ``viewer`` may see)."""
        return seq if _is_staff(viewer) else self.event_token(matter_id, seq)

    def position_for(self, viewer: Viewer, matter_id: int, seq: int) -> int | str:
        """A position (head, next, prev) as ``viewer`` is given it."""
        return seq if _is_staff(viewer) else self.position_token(matter_id, seq)

    def event_view(self, view: dict[str, Any], viewer: Viewer, matter_id: int) -> dict[str, Any]:
        """``view`` (``audience.view_for``) as ``viewer`` gets it: for a contact,
        ``seq`` is replaced by ``cursor`` (a copy; the view is cached and shared)."""
        if _is_staff(viewer):
            return view
        out = {k: v for k, v in view.items() if k != "seq"}
        out["cursor"] = self.event_token(matter_id, view["seq"])
        return out

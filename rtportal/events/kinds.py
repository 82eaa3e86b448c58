"""The registry of event kinds: who writes each, its audiences, its payload.

Every event names a registered kind. A kind says which principals may
write it (``staff``, ``contact``, ``bot``), which audiences it may have
(``staff``: staff and bots only; ``portal``: clients too), whether it may
carry a ``blob``, whether it is a ``system`` kind (written only by the
server's own services, such as the portal invite lifecycle: every HTTP or
websocket send of it is refused, whoever sends it), and the schema of its
payload (``rtportal.events.schema``):
a write must fit it exactly (``rtportal.events.validate``), and a client's
view of a portal event is built from the fields the schema declares visible
to clients (``rtportal.events.audience``). A field not declared ``client``
is staff-only, wherever it is nested.

``docs/protocol.md`` ("Event kinds") lists the same table for client authors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from rtportal.events.event import Audience
from rtportal.events.schema import AnyOf, Bool, Field, Int, List, Obj, Str
from rtportal.principal import PrincipalKind

__all__ = ["KINDS", "Kind", "kind_of"]

_MAX_SEQ = 2**53 - 1  # the largest integer every JSON reader keeps exact
_ITEM_MAX = 140  # an item id: "<rtp1 id>.<client id>" (item_tags.item is as wide)
_TO_MAX = 20  # recipients of a client thread
_FILE_ID = 22  # a file id (rtportal.files.rows)
_FILES_MAX = 20  # files one item attaches


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    writers: frozenset[PrincipalKind]
    audiences: tuple[Audience, ...]
    payload: Obj
    blob: bool = False  # may an event of this kind carry a blob
    # Written only by the server's services (``Unit.append(..., system=True)``):
    # an HTTP or websocket send of it is refused whoever sends it.
    system: bool = False
    # A client sees it only when addressed: their contact id is in ``payload.to``
    # (rtportal.events.audience.view_for); staff see every one.
    addressed: bool = False
    # A thread item, an act on one, or a document request's change: a client sees
    # it when ``payload.to`` names them, when they sent it, or when their
    # membership sees applicants
    # (rtportal.events.audience.view_for; as SQL, rtportal.events.visiblesql).
    threaded: bool = False


def _obj(**fields: Field) -> Obj:
    return Obj(MappingProxyType(fields))


_STAFF: frozenset[PrincipalKind] = frozenset({"staff"})

_KINDS = (
    # A thread item (docs/threads.md): an opener (no ``parent``) or a reply.
    # Its body is end-to-end encrypted in ``blob``; the payload holds only
    # metadata. ``item``, ``to`` and a reply's ``parent`` are set by the
    # server (rtportal.threads.items). Stored messages from before threads
    # (``reply_to``, no ``thread``) still read: a view copies declared fields.
    # Internal items are ``note``s (stored staff-audience messages still read).
    Kind(
        "message",
        frozenset({"staff", "contact", "bot"}),
        ("portal",),
        _obj(
            # Required of every send (rtportal.threads.items: ``thread_required``);
            # optional here, where the server's own writes are checked too.
            thread=Field(Str(64), client=True),
            parent=Field(Str(_ITEM_MAX), client=True),
            to=Field(List(Int(1, _MAX_SEQ), _TO_MAX), client=True),
            item=Field(Str(_ITEM_MAX), client=True),
            # The sender's clock (ns since the Unix epoch): informational.
            sent_at=Field(Int(0, 2**63 - 1), client=True),
            # Attached files' ids, in the order of the body's descriptors
            # (docs/files.md; claimed by rtportal.files.attach).
            files=Field(List(Str(_FILE_ID), _FILES_MAX), client=True),
        ),
        blob=True,
        threaded=True,
    ),
    # An internal note: a staff thread of its own or inside a client thread
    # (body sealed under the firm internal key in ``blob``; ``text``: the
    # plaintext of firms without keys and of notes stored before threads).
    Kind(
        "note",
        frozenset({"staff", "bot"}),
        ("staff",),
        _obj(
            text=Field(Str(8000)),
            thread=Field(Str(64)),
            parent=Field(Str(_ITEM_MAX)),
            item=Field(Str(_ITEM_MAX)),
            files=Field(List(Str(_FILE_ID), _FILES_MAX)),
        ),
        blob=True,
    ),
    # A new body of an item, from the item's sender only (a new envelope in
    # ``blob``). ``thread`` and ``to`` are the item's (set by the server).
    Kind(
        "edit",
        frozenset({"staff", "contact", "bot"}),
        ("portal", "staff"),
        _obj(
            item=Field(Str(_ITEM_MAX), required=True, client=True),
            thread=Field(Str(64), client=True),
            to=Field(List(Int(1, _MAX_SEQ), _TO_MAX), client=True),
        ),
        blob=True,
        threaded=True,
    ),
    # An item deleted by its sender (or by staff): its events' blobs are
    # erased in the delete's transaction (``events.redacted``).
    Kind(
        "delete",
        frozenset({"staff", "contact", "bot"}),
        ("portal", "staff"),
        _obj(
            item=Field(Str(_ITEM_MAX), required=True, client=True),
            thread=Field(Str(64), client=True),
            to=Field(List(Int(1, _MAX_SEQ), _TO_MAX), client=True),
        ),
        threaded=True,
    ),
    # An internal-only tag put on (or, ``removed``, taken off) one item: written by
    # rtportal.threads.tags with the ``item_tags`` row, in its transaction. ``tag`` is
    # the firm tag's opaque id (its name is ciphertext in ``tags``); ``thread`` is the
    # item's (set by the server), so the thread index finds the change.
    Kind(
        "tag",
        _STAFF,
        ("staff",),
        _obj(
            item=Field(Str(140), required=True),
            tag=Field(Str(22), required=True),
            removed=Field(Bool()),
            thread=Field(Str(64)),
        ),
        system=True,
    ),
    # A matter moved to another internal phase (rtportal.timeline.change): staff
    # only. Stored events of the earlier client-visible kind (audience
    # ``portal``, ``phase`` a step name, ``step``, ``checklist``) still read, so
    # ``portal`` stays an audience and those fields stay declared; the server
    # writes only ``staff`` events of ``phase`` (id), ``name`` and ``from``.
    Kind(
        "phase",
        frozenset({"staff", "bot"}),
        ("staff", "portal"),
        _obj(
            phase=Field(AnyOf((Int(1, _MAX_SEQ), Str(200))), required=True, client=True),
            name=Field(Str(200)),
            **{"from": Field(Int(1, _MAX_SEQ))},
            step=Field(
                _obj(
                    index=Field(Int(0, 1000), client=True),
                    total=Field(Int(0, 1000), client=True),
                    staff_reason=Field(Str(2000)),
                ),
                client=True,
            ),
            checklist=Field(
                List(
                    _obj(
                        label=Field(Str(200), required=True, client=True),
                        done=Field(Bool(), client=True),
                        staff_comment=Field(Str(2000)),
                    ),
                    50,
                ),
                client=True,
            ),
            staff_detail=Field(Str(2000)),
        ),
        system=True,
    ),
    # The client's step of the matter's timeline changed (rtportal.timeline.change):
    # written only when the step the new phase maps to differs from the old one
    # and the firm shows the timeline. ``index`` is 0-based; absent when the
    # matter is before its first step. Never names a phase.
    Kind(
        "step",
        frozenset({"staff", "bot"}),
        ("portal",),
        _obj(
            index=Field(Int(0, 1000), client=True),
            total=Field(Int(0, 1000), required=True, client=True),
            name=Field(Str(200), client=True),
            description=Field(Str(2000), client=True),
        ),
        system=True,
    ),
    # The first record of an invitation, before the access lifecycle: ``access``
    # has replaced it. Kept so stored events of it still read; nobody writes it
    # (a staff-written "invited" beside the server's ``access`` record would be
    # a forgery of the lifecycle).
    Kind(
        "invite",
        _STAFF,
        ("staff",),
        _obj(
            contact_id=Field(Int(1, _MAX_SEQ), required=True),
            email=Field(Str(254)),
            name=Field(Str(200)),
        ),
        system=True,
    ),
    # The portal access lifecycle of one contact on the matter (staff record,
    # written by rtportal.access.invites and rtportal.access.acceptance in the
    # transaction of the act).
    Kind(
        "access",
        _STAFF,
        ("staff",),
        _obj(
            # invited, resent, accepted, removed, regenerated or expired
            action=Field(Str(16), required=True),
            contact_id=Field(Int(1, _MAX_SEQ), required=True),
            invite_id=Field(Int(1, _MAX_SEQ), required=True),
            method=Field(Str(10)),
        ),
        system=True,
    ),
    # The welcome message of a portal invite: the invited client's first thread
    # (``welcome-<invite id>``), addressed to the contacts in ``to``. In an end-to-end
    # encrypted firm it is the staff browser's envelope in ``blob`` (thread
    # ``welcome-<contact id>``, no subject or text: docs/keys.md).
    Kind(
        "welcome",
        _STAFF,
        ("portal",),
        _obj(
            thread=Field(Str(64), required=True, client=True),
            to=Field(List(Int(1, _MAX_SEQ), 20), required=True, client=True),
            subject=Field(Str(2000), client=True),
            text=Field(Str(48_000), client=True),
        ),
        blob=True,
        system=True,
        addressed=True,
    ),
    # A change in the key directory (docs/keys.md "Events"): a client re-reads
    # the directory (``/api/v1/keys/...``) and verifies before using anything.
    # Written by rtportal.keys in the transaction of the change.
    Kind(
        "keys",
        frozenset({"staff", "contact", "bot"}),
        ("portal", "staff"),
        _obj(
            # epoch, head, wraps, cert, revocations, escrow, root, pending or handover
            what=Field(Str(16), required=True, client=True),
            epoch=Field(Int(1, 2**32 - 1), client=True),
            # whose key changed: staff only (a client with applicants hidden must not
            # learn other contacts' ids from the stream; it re-reads the directory)
            user=Field(Str(64)),
            version=Field(Int(1, 2**32 - 1), client=True),
        ),
        system=True,
    ),
    # A change of the document checklist (docs/documents.md), written by
    # rtportal.documents in the change's transaction: ``action`` is requested,
    # uploaded, accepted or rejected; ``items`` the checklist items' public ids;
    # ``to`` the clients the requests are addressed to (the thread rule: those,
    # the sender, and members who see applicants); ``files`` an upload's file ids
    # and ``round`` its upload round. ``blob``: an upload's descriptors or a
    # rejection's reason, an rtp1 envelope the server never reads.
    Kind(
        "document",
        frozenset({"staff", "contact", "bot"}),
        ("portal",),
        _obj(
            action=Field(Str(16), required=True, client=True),
            items=Field(List(Str(22), 50), required=True, client=True),
            to=Field(List(Int(1, _MAX_SEQ), _TO_MAX), client=True),
            files=Field(List(Str(_FILE_ID), _FILES_MAX), client=True),
            round=Field(Int(0, 2**31 - 1), client=True),
            # The document types' ids: the staff screens' grouping, no client's business.
            types=Field(List(Int(1, _MAX_SEQ), 50)),
        ),
        blob=True,
        system=True,
        threaded=True,
    ),
    # A document the firm provides (a disclosure) shared with the matter's
    # clients, every one of them, present and future: ``items``, ``files`` as
    # above; ``blob`` the envelope of the files' descriptors.
    Kind(
        "document_shared",
        _STAFF,
        ("portal",),
        _obj(
            items=Field(List(Str(22), 50), required=True, client=True),
            files=Field(List(Str(_FILE_ID), _FILES_MAX), client=True),
            types=Field(List(Int(1, _MAX_SEQ), 50)),
        ),
        blob=True,
        system=True,
    ),
    # An automated status update from the firm's bot; its raw detail stays with staff.
    Kind(
        "bot",
        frozenset({"bot"}),
        ("portal", "staff"),
        _obj(
            status=Field(Str(200), required=True, client=True),
            source=Field(Str(64), client=True),
            staff_detail=Field(Str(2000)),
        ),
    ),
)

KINDS: Mapping[str, Kind] = MappingProxyType({kind.name: kind for kind in _KINDS})


def kind_of(name: str) -> Kind | None:
    """The registered kind ``name``, or ``None``."""
    return KINDS.get(name)

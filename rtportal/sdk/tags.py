"""Internal-only tags from the Python client: create one, read the names, tag an item.

A tag name is sealed like a note, under the firm internal key that only staff
hold, but in a context of its own (docs/threads.md "Tags"): envelope matter
``#tag`` (never a matter reference), thread the tag id, ``vis=1``, epoch the
escrow (FEK/FIR) version, ctype ``rtp1/text``, the key
``internal_key(FIR, firm, "#tag", version)``. Opening checks the context and
that the sender holds a staff certificate valid when it sealed the name,
verifies the signature over the rebuilt AAD, then decrypts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rtportal import base64url
from rtportal.crypto.certs import Role
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import (
    CTYPE_TEXT,
    Envelope,
    Header,
    Visibility,
    decrypt_envelope,
    seal_envelope,
    verify_envelope,
)
from rtportal.crypto.errors import Uncertified, WrongContext
from rtportal.crypto.kdf import internal_key
from rtportal.crypto.rng import Rng, system_rng
from rtportal.sdk.actor import Actor

if TYPE_CHECKING:
    from rtportal.sdk.client import Client

__all__ = [
    "TAG_CONTEXT",
    "create_tag",
    "new_tag_id",
    "open_tag_name",
    "seal_tag_name",
    "tag_item",
    "tag_names",
]

TAG_CONTEXT = "#tag"  # = rtportal.threads.tags.TAG_CONTEXT (the server checks it)
NAME_BLOB_MAX = 1024


def new_tag_id(rng: Rng = system_rng) -> str:
    """16 random bytes as 22 characters of base64url."""
    return base64url.encode(rng(16))


def seal_tag_name(
    d: Directory, actor: Actor, *, tag: str, name: str, now_ms: int, rng: Rng = system_rng
) -> Envelope:
    """The name under the newest verified escrow version's FIR (staff only hold it)."""
    version = d.newest_escrow_version
    fek = actor.firm_keys.get(version)
    if fek is None:
        raise Uncertified(f"no firm internal key of version {version}")
    header = Header(
        d.firm,
        TAG_CONTEXT,
        tag,
        rng(16),
        None,
        actor.uid,
        actor.kid,
        version,
        Visibility.STAFF,
        now_ms,
        CTYPE_TEXT,
    )
    key = internal_key(fek.fir, d.firm, TAG_CONTEXT, version)
    return seal_envelope(header, key, name.encode("utf-8"), actor.identity, rng=rng)


def open_tag_name(d: Directory, actor: Actor, blob: bytes, *, tag: str, now_ms: int) -> str:
    """The name of ``tag`` from its ``name_blob``: verified, then decrypted (or raises)."""
    env = Envelope.decode(blob)
    h = env.header
    if (h.matter, h.thread, h.vis, h.ctype) != (TAG_CONTEXT, tag, Visibility.STAFF, CTYPE_TEXT):
        raise WrongContext("not the name of this tag")
    cert = d.certificate(h.sender, h.sender_kid, now_ms, at_ms=h.ts_ms)
    if cert.role is not Role.STAFF:
        raise Uncertified("tag names are written by staff")
    aad = verify_envelope(env, firm=d.firm, matter=TAG_CONTEXT, thread=tag, sender_ed_pk=cert.ed_pk)
    fek = actor.firm_keys.get(h.epoch)
    if fek is None:
        raise Uncertified(f"no firm internal key of version {h.epoch}")
    key = internal_key(fek.fir, d.firm, TAG_CONTEXT, h.epoch)
    return decrypt_envelope(env, aad, key).decode("utf-8")


async def create_tag(client: Client, name: str) -> str:
    """A new tag of the firm named ``name`` (sealed here); returns its id."""
    d = await client.sync()
    tag = new_tag_id(client.rng)
    env = seal_tag_name(d, client.actor, tag=tag, name=name, now_ms=client.clock(), rng=client.rng)
    body = {"tag": tag, "name_blob": base64url.encode(env.encode())}
    await client.http.call("POST", "/api/v1/firm/tags", body)
    return tag


async def tag_names(client: Client) -> dict[str, str]:
    """Every tag of the firm with its name, each verified and decrypted."""
    d = await client.sync()
    listed = await client.http.call("GET", "/api/v1/firm/tags")
    out = {}
    for row in listed["tags"]:
        blob = base64url.decode(row["name_blob"], NAME_BLOB_MAX, "name_blob")
        assert blob is not None
        tag = row["tag"]
        out[tag] = open_tag_name(d, client.actor, blob, tag=tag, now_ms=client.clock())
    return out


async def tag_item(
    client: Client, matter: str, item: str, tag: str, *, removed: bool = False
) -> dict[str, Any]:
    """Put ``tag`` on ``item`` (or take it off); the server's answer."""
    body = {"tag": tag, "removed": removed}
    answer: dict[str, Any] = await client.http.call(
        "POST", f"/api/v1/matters/{matter}/items/{item}/tags", body
    )
    return answer

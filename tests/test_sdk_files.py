"""Attachments through the Python client against the real server (docs/files.md): a
file encrypted with RTA1 and uploaded as a stream, attached to a message, downloaded
and decrypted by its reader; a blob that does not match its descriptor is refused and
leaves nothing behind; the server's files directory never holds the plaintext."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import pytest

from rtportal.crypto.errors import AttachmentInvalid
from tests.conftest import MakeFirm
from tests.support.sdkworld import sdk_world
from tests.support.server import RunningServer

pytestmark = pytest.mark.timeout(300)


async def test_attach_send_fetch_through_the_sdk(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        matter = await w.matter("Partner visa")
        ref = matter.reference
        cleo, _, client, _ = await w.accepted(matter, "Cleo", ("Hi", "hello"), "pw 1 x")
        marker = b"PLAINTEXT-CANARY-7f3a"
        plain = marker + os.urandom(3 * 65536 + 123)  # four chunks, the last short
        src = tmp_path / "passport scan.pdf"
        src.write_bytes(plain)

        attached = await w.staff.attach(ref, src, mime="application/pdf")
        assert attached.descriptor.name == "passport scan.pdf"
        await w.staff.send(
            ref, thread="docs", text="your form", to=[cleo.id], attachments=[attached]
        )
        [item] = [i for i in await client.read(ref) if i.thread == "docs"]
        assert item.files == (attached.file_id,)
        [descriptor] = item.body.attachments
        assert (descriptor.name, descriptor.mime) == ("passport scan.pdf", "application/pdf")
        dst = tmp_path / "got.pdf"
        assert await client.fetch(ref, item.files[0], descriptor, dst) == len(plain)
        assert dst.read_bytes() == plain

        # The client answers with a file of their own; staff read it.
        reply_src = tmp_path / "empty.txt"
        reply_src.write_bytes(b"")
        mine = await client.attach(ref, reply_src)
        await client.send(ref, thread="docs", text="signed", attachments=[mine])
        [reply] = [i for i in await w.staff.read(ref) if i.body.text == "signed"]
        back = tmp_path / "back.txt"
        assert await w.staff.fetch(ref, reply.files[0], reply.body.attachments[0], back) == 0
        assert back.read_bytes() == b""

        # A descriptor that does not match the blob (a swapped file): refused, nothing kept.
        forged = dataclasses.replace(descriptor, ct_sha256=bytes(32))
        wrong = tmp_path / "wrong.pdf"
        with pytest.raises(AttachmentInvalid):
            await client.fetch(ref, item.files[0], forged, wrong)
        assert not wrong.exists() and not (tmp_path / "wrong.pdf.part").exists()

        # The server's store holds ciphertext only: never the plaintext, nor its name.
        stored = await asyncio.to_thread(_stored_bytes, Path(kit.settings.files_dir))
        assert stored and not [d for d in stored if marker in d or b"passport scan" in d]


def _stored_bytes(root: Path) -> list[bytes]:
    return [p.read_bytes() for p in root.rglob("*") if p.is_file()]

"""The read side's I/O for a connection (mixed into ``ConnectionCore``, docs/threads.md).

Executes the protocol core's ``MarkRead`` (``rtportal.threads.reads``: a
write, so it spends one token of the user's write bucket, like a send) and
``RelayTyping`` (``rtportal.threads.typingrelay``: a read), and hands the
hub's ephemeral frames to the protocol core with this connection's id.
Both run as the connection's short tasks (counted in ``in_flight``), and
every failure is answered with the frame's stable error code. A mark's write
is shielded from the connection's end (``ConnectionCore.cancel_tasks``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from rtportal.db import Database
from rtportal.limits import UserLimits
from rtportal.principal import Principal
from rtportal.realtime.hub import Hub
from rtportal.realtime.message import Ephemeral
from rtportal.threads.cursors import cursor_out
from rtportal.threads.reads import mark_read
from rtportal.threads.typingrelay import relay_typing
from rtportal.ws.admission import as_error
from rtportal.ws.protocol import Protocol
from rtportal.ws.threadproto import MarkRead, RelayTyping

__all__ = ["ThreadIO"]


class ThreadIO:
    """Mixed into ``ConnectionCore``, which sets these attributes."""

    __slots__ = ()

    conn_id: str
    db: Database
    hub: Hub
    limits: UserLimits
    principal: Principal
    proto: Protocol

    def feed(self, actions: list[Any]) -> None:
        raise NotImplementedError

    def _slots(self) -> asyncio.Semaphore:
        raise NotImplementedError

    def ephemeral(self, msg: Ephemeral) -> None:
        """The hub's ``EphemeralListener``: runs the core synchronously, never awaits."""
        self.feed(self.proto.ephemeral(msg, self.conn_id))

    def _thread_task(self, action: MarkRead | RelayTyping) -> Coroutine[Any, Any, None]:
        return self._mark(action) if isinstance(action, MarkRead) else self._typing(action)

    async def _mark(self, action: MarkRead) -> None:
        frame = action.frame
        try:
            self.limits.check_write(self.principal)  # a read mark is a write
            async with self._slots():
                # Shielded: a connection closing cancels its tasks, and the client
                # sent this mark before it went: it is recorded (and pushed to the
                # matter's other readers); only its answer is dropped.
                marked = await asyncio.shield(
                    mark_read(
                        self.db,
                        self.hub.publish_ephemeral,
                        self.principal,
                        frame.matter,
                        frame.thread,
                        frame.upto,
                        cursors=self.proto.cursors,
                        conn_id=self.conn_id,
                    )
                )
        except Exception as exc:
            self.feed(self.proto.read_failed(frame, as_error(exc, "read mark")))
            return
        upto = cursor_out(self.proto.cursors, self.principal, marked.matter_id, marked.upto)
        self.feed(self.proto.read_marked(frame, upto, marked.unread, marked.matter_unread))

    async def _typing(self, action: RelayTyping) -> None:
        frame = action.frame
        try:
            async with self._slots():
                await relay_typing(
                    self.db,
                    self.hub.publish_ephemeral,
                    self.principal,
                    frame.matter,
                    frame.thread,
                    frame.internal,
                )
        except Exception as exc:
            self.feed(self.proto.typing_failed(frame, as_error(exc, "typing")))

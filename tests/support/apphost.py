"""The rtportal app served in-process to synchronous tests (hypothesis state machines)."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette

from rtportal.app import create_app
from rtportal.db import Database
from rtportal.events.cursor import CursorCodec
from rtportal.settings import Settings

__all__ = ["AppHost"]


class AppHost:
    """The app with its lifespan running in an event loop of the caller's (a
    state machine's ``_Loop``), and an in-process HTTP client (httpx's ASGI
    transport): what the ``app`` and ``http`` fixtures give an async test."""

    def __init__(self, settings: Settings) -> None:
        self.app: Starlette = create_app(settings)
        self.settings = settings
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.http: httpx.AsyncClient

    async def start(self) -> None:
        started = asyncio.Event()

        async def life() -> None:
            # The lifespan is entered and left in one task (its scopes need that).
            async with self.app.router.lifespan_context(self.app):
                started.set()
                await self._stop.wait()

        self._task = asyncio.create_task(life())
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():
            waiter.cancel()
            await self._task  # raises the startup's error
        transport = httpx.ASGITransport(app=self.app)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async def stop(self) -> None:
        await self.http.aclose()
        self._stop.set()
        if self._task is not None:
            await self._task

    @property
    def db(self) -> Database:
        db: Database = self.app.state.runtime.db
        return db

    @property
    def codec(self) -> CursorCodec:
        codec: CursorCodec = self.app.state.runtime.frames.cursors
        return codec

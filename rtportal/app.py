"""The application factory: routes plus a lifespan that owns db, broker and hub.

Start order: the data directories (owner-only, ``rtportal.datafiles``),
migrations (under a lock, so workers starting together do not race),
database, broker, hub. Stop order is the reverse: the hub first
(it closes websockets with 1012 "service restart"), then the broker, then
the database.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, WebSocketRoute

from rtportal import logs
from rtportal.access import membership, passwords
from rtportal.access.queries import ACCESS_QUERIES
from rtportal.access.ratelimit_redis import limiter_for
from rtportal.bytebudget import ByteBudget
from rtportal.datafiles import private_dir
from rtportal.db import Database, migrate
from rtportal.events.cursor import CursorCodec
from rtportal.events.groupcommit import GroupCommit
from rtportal.events.guards import Guards
from rtportal.files import attach, quota
from rtportal.files.storage import storage_for
from rtportal.http import errors as http_errors
from rtportal.http import routes as api
from rtportal.http.headers import SecurityHeaders, security_headers
from rtportal.http.requestid import RequestIds
from rtportal.http.static import PortalStatic
from rtportal.keys import envelopes
from rtportal.limits import AuthFailures, UserLimits
from rtportal.notify.notifier import notifier_for
from rtportal.realtime.broker import from_url
from rtportal.realtime.hub import Hub
from rtportal.reviews.enqueue import ReviewCompanion
from rtportal.reviews.live import ReviewCounts
from rtportal.runtime import RUNTIME_KEY, Runtime
from rtportal.settings import Settings
from rtportal.threads import acts, items
from rtportal.ws.endpoint import websocket_endpoint
from rtportal.ws.protocol import FrameCache

__all__ = ["STATIC_DIR", "create_app", "create_app_from_env"]

log = logging.getLogger("rtportal.app")

# The web client (plain ES modules) lives beside the package in a checkout.
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def _routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [*api.routes(), WebSocketRoute("/ws", websocket_endpoint)]
    if STATIC_DIR.is_dir():
        routes.append(Mount("/", app=PortalStatic(directory=STATIC_DIR, html=True), name="static"))
    return routes


# An upload's pending row or temporary file older than this is a dead worker's.
_STALE_UPLOAD_S = 3600.0

# The cyclic collector's thresholds in a server process (see create_app);
# Python's default is (700, 10, 10).
GC_THRESHOLDS = (10_000, 10, 10)


def create_app(settings: Settings, *, freeze_gc: bool = False) -> Starlette:
    """A Starlette app for ``settings``; nothing connects until the lifespan runs.

    ``freeze_gc`` (set for a server process, see ``create_app_from_env``):
    after startup, move every object built so far (modules, SQLAlchemy
    metadata and statement caches, the hub) out of the cyclic collector's
    reach, so a full collection walks only what connections made since
    (with thousands of connections a full collection of everything pauses
    every delivery for tens of ms). Then the young generation is collected
    every ``GC_THRESHOLDS[0]`` new objects instead of 700: fewer short-lived
    objects survive into the old generation, so full collections become
    rare. Not for a test process,
    which would freeze its other tests' objects too.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Runtime]]:
        async with AsyncExitStack() as stack:
            private_dir(settings.data_dir)
            storage = storage_for(settings)
            storage.prepare()
            await migrate.upgrade(settings.database_url)
            db = Database(settings.database_url)
            stack.push_async_callback(db.close)
            # What a worker that died mid-upload left: its reservation and its
            # temporary file (docs/files.md "Upload").
            await quota.sweep_pending(db, timedelta(seconds=_STALE_UPLOAD_S))
            await storage.sweep(_STALE_UPLOAD_S)
            # The process's password hashing pool, with this app's parameters.
            app.state.hashing = passwords.configure(settings)
            broker = from_url(settings.broker_url)
            stack.push_async_callback(broker.close)
            # hub.start() installs its handlers, then starts the broker.
            hub = Hub(db, broker, settings, ACCESS_QUERIES)
            await hub.start()
            stack.push_async_callback(hub.stop)
            app.state.db = db
            app.state.broker = broker
            app.state.hub = hub
            # What this worker's send checks remember of matters, each fact at the
            # matter's access version, which the write holds them to.
            guards = Guards()
            # The review inbox's live counts (docs/reviews.md), pushed after commits.
            review_counts = app.state.review_counts = ReviewCounts(db, hub.publish_ephemeral)
            stack.push_async_callback(review_counts.idle)
            review_companion = ReviewCompanion(review_counts)
            # One per worker: websocket and HTTP sends share its transactions.
            committer = app.state.committer = GroupCommit(
                db,
                hub.publish,
                settings,
                membership.can_access,
                # The key directory's check of encrypted matters' messages.
                envelopes.KeyChecks(guards),
                envelopes.CHECKED_KINDS,
                # The thread rules and the fields the server sets (docs/threads.md),
                # with this worker's memory of thread openers.
                items.Preparer(guards=guards),
                items.ITEM_SEND_KINDS | items.ACT_KINDS,
                # Edits and deletes: one transaction each (a delete erases blobs);
                # items naming files: claimed in the transaction that writes them.
                attach.AttachWriter(
                    db, settings, storage, acts.ActWriter(db, settings), review_companion
                ),
                items.ACT_KINDS,
                attach.names_files,
                guards,
                # A client's message items queued for review in their transaction.
                review_companion,
            )
            # Its cursor codec (contacts' tokens) is keyed by the server secret:
            # every worker reads the others' tokens.
            frames = FrameCache(
                CursorCodec(settings.secret_key), max_bytes=settings.frame_cache_bytes
            )
            limiter = limiter_for(settings)
            stack.push_async_callback(limiter.close)
            # Sends queued email/SMS in the background; its start sweeps rows a
            # dead worker left queued (rtportal/notify/notifier.py).
            notifier = notifier_for(settings, db)
            await notifier.start()
            stack.push_async_callback(notifier.close)
            runtime = app.state.runtime = Runtime(
                settings,
                db,
                hub,
                committer,
                UserLimits(settings),
                AuthFailures(settings),
                frames,
                ByteBudget(settings.read_budget_bytes),
                limiter,
                notifier,
                storage,
            )
            log.info(
                "rtportal started (database %s, broker %s)",
                db.backend,
                settings.broker_url.split("://", 1)[0],
            )
            if freeze_gc:
                gc.collect()
                gc.freeze()
                gc.set_threshold(*GC_THRESHOLDS)
            # Lifespan state: how rtportal.ws.native (not a route) finds the runtime.
            yield {RUNTIME_KEY: runtime}

    app = Starlette(
        routes=_routes(),
        lifespan=lifespan,
        exception_handlers=http_errors.exception_handlers,
        middleware=[
            Middleware(RequestIds),
            Middleware(SecurityHeaders, headers=security_headers(settings)),
        ],
    )
    # Available before startup too (the uvicorn test helper reads ws_max_size).
    app.state.settings = settings
    return app


def create_app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory rtportal.app:create_app_from_env``."""
    settings = Settings.from_env()
    logs.setup(settings.log_format)  # in each worker process
    return create_app(settings, freeze_gc=True)

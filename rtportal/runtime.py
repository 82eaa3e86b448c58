"""The per-worker runtime: what the app's lifespan builds and every transport shares.

The lifespan yields it as ASGI lifespan state (``RUNTIME_KEY``), so a
transport that is not a Starlette route (``rtportal.ws.native``, a uvicorn
websocket protocol) finds the same database, hub and committer as the HTTP
routes, without module globals. The portable endpoint reads the same
object from ``app.state.runtime``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtportal.access.ratelimit import Limiter
from rtportal.bytebudget import ByteBudget
from rtportal.db import Database
from rtportal.events.groupcommit import GroupCommit
from rtportal.files.storage import Storage
from rtportal.limits import AuthFailures, UserLimits
from rtportal.notify.outbox import Notifier
from rtportal.realtime.framecache import FrameCache
from rtportal.realtime.hub import Hub
from rtportal.settings import Settings

__all__ = ["RUNTIME_KEY", "Runtime"]

RUNTIME_KEY = "rtportal.runtime"


@dataclass(slots=True, eq=False)
class Runtime:
    settings: Settings
    db: Database
    hub: Hub
    committer: GroupCommit
    limits: UserLimits  # per-user connection cap and write rate of this worker
    auth_failures: AuthFailures  # failed HTTP authentications per source address
    # One encoded-frame cache per worker: (matter_id, seq) names one event per database.
    frames: FrameCache
    # Bytes of backlog and history pages being read and encoded at once.
    reads: ByteBudget
    # Sign-in, passcode, invite and password-change limits (shared across
    # workers through Redis when the broker is Redis).
    limiter: Limiter
    # Delivers queued email/SMS after their transaction committed.
    notifier: Notifier
    # Where files' blobs are (rtportal.files.storage: RTPORTAL_FILES_URL).
    files: Storage

"""The hub's control plane: closing a principal's or a matter's connections on every worker.

``close_principal`` (logout, revocation, sign out everywhere) and
``close_access`` (membership ended) are applied locally, then published on
the ``ctl`` topic so every other worker applies them too
(``rtportal.realtime.message`` is the format). ``closes`` counts what was
applied, so a connection can tell that a close may have raced its check.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Collection

from rtportal.closecodes import CLOSE_ACCESS_REMOVED, CLOSE_REVOKED
from rtportal.realtime.broker.base import Broker
from rtportal.realtime.listener import Listener
from rtportal.realtime.matterstate import CloseCounts
from rtportal.realtime.message import (
    CTL_TOPIC,
    CloseAccess,
    ClosePrincipal,
    decode_control,
    encode_control,
)
from rtportal.realtime.recheck import Rechecks

__all__ = ["ControlPlane"]

log = logging.getLogger("rtportal.realtime.hub")


class ControlPlane:
    """Mixed into ``Hub``, which sets these attributes and closes listeners."""

    _broker: Broker
    _recent_ctl: deque[str]
    _by_principal: dict[tuple[str, int], dict[int, Listener]]
    _rechecks: Rechecks
    _closes: CloseCounts

    def _close_listener(self, listener: Listener, code: int) -> None:
        raise NotImplementedError

    async def close_principal(
        self,
        kind: str,
        principal_id: int,
        code: int = CLOSE_REVOKED,
        *,
        session_id: str | None = None,
        session_ids: Collection[str] | None = None,
    ) -> None:
        """Close every live connection of a principal on every worker.

        With ``session_id`` or ``session_ids``, only the connections of those
        login sessions (a logout on one device leaves the user's other
        devices connected). Connections that only send are registered too.
        """
        sids = None if session_ids is None and session_id is None else set(session_ids or ())
        if sids is not None and session_id is not None:
            sids.add(session_id)
        if sids is not None and not sids:
            return
        ctl = ClosePrincipal(
            uuid.uuid4().hex, kind, principal_id, code, None if sids is None else frozenset(sids)
        )
        self._recent_ctl.append(ctl.id)
        self._apply_control(ctl)
        await self._broker.publish(CTL_TOPIC, encode_control(ctl))

    async def close_access(
        self, matter_id: int, kind: str, principal_id: int, code: int = CLOSE_ACCESS_REMOVED
    ) -> None:
        """Close, on every worker, the principal's connections that hold ``matter_id``.

        Those joined to its live stream and those that remember access to it
        for sends (``hold``); the principal's other connections stay open.
        Called after a removal from the matter is committed.
        """
        ctl = CloseAccess(uuid.uuid4().hex, matter_id, kind, principal_id, code)
        self._recent_ctl.append(ctl.id)
        self._apply_control(ctl)
        await self._broker.publish(CTL_TOPIC, encode_control(ctl))

    def closes(self, kind: str, principal_id: int) -> int:
        """A counter bumped by every close of ``kind:principal_id`` applied on this worker.

        ``close_access`` and ``close_principal`` (local or from the broker)
        reach only the connections registered or holding the matter at that
        moment. A connection reads this before its database check and again
        once it is registered or holds the matter: a change means a close
        may have been applied in between, missing it, and it checks again.
        """
        return self._closes.of(kind, principal_id)

    def closes_total(self) -> int:
        """Every close applied on this worker (``closes`` of any principal).

        For a connection that does not know its principal yet (sign-in).
        """
        return self._closes.total

    def _apply_control(self, ctl: ClosePrincipal | CloseAccess) -> None:
        self._closes.bump(ctl.kind, ctl.principal_id)
        if isinstance(ctl, CloseAccess):
            for listener in self._rechecks.holders(ctl.matter_id, ctl.kind, ctl.principal_id):
                self._close_listener(listener, ctl.code)
            return
        group = self._by_principal.get((ctl.kind, ctl.principal_id))
        if not group:
            return
        for listener in list(group.values()):
            if ctl.session_ids is None or listener.principal.session_id in ctl.session_ids:
                self._close_listener(listener, ctl.code)

    def _on_control(self, data: bytes) -> None:
        try:
            ctl = decode_control(data)
        except ValueError:
            log.warning("dropping a malformed control message")
            return
        if ctl.id in self._recent_ctl:
            return  # our own, already applied locally
        self._apply_control(ctl)

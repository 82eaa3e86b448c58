"""The ``keys`` event of a change, appended in the change's transaction.

Matter changes go to the matter's stream; firm-wide changes (staff or bot
certificates, revocations, escrow, the root key, a pending registration) to
every matter of the firm, so every client sees them live (docs/keys.md
"Events"). After the commit the ``Unit`` publishes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sqlalchemy import select

from rtportal.db.models import Matter
from rtportal.events.unit import Unit
from rtportal.principal import Principal

__all__ = ["announce", "announce_firm"]

What = Literal[
    "epoch", "head", "wraps", "cert", "revocations", "escrow", "root", "pending", "handover"
]


async def announce(
    unit: Unit,
    actor: Principal,
    matters: Sequence[Matter],
    what: What,
    *,
    audience: Literal["portal", "staff"] = "portal",
    epoch: int | None = None,
    user: str | None = None,
    version: int | None = None,
) -> None:
    payload: dict[str, object] = {"what": what}
    if epoch is not None:
        payload["epoch"] = epoch
    if user is not None:
        payload["user"] = user
    if version is not None:
        payload["version"] = version
    for matter in matters:
        await unit.append(
            matter=matter, actor=actor, kind="keys", audience=audience, payload=payload, system=True
        )


async def announce_firm(
    unit: Unit,
    actor: Principal,
    what: What,
    *,
    audience: Literal["portal", "staff"] = "portal",
    user: str | None = None,
    version: int | None = None,
) -> None:
    """``announce`` in every matter of the actor's firm (in id order: one lock order)."""
    rows = await unit.session.execute(
        select(Matter).where(Matter.firm_id == actor.firm_id).order_by(Matter.id)
    )
    await announce(
        unit, actor, list(rows.scalars()), what, audience=audience, user=user, version=version
    )

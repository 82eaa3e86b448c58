"""Alembic environment, driven programmatically by ``rtportal.db.migrate``.

No alembic.ini: ``rtportal.db.migrate`` builds the Config and passes an open
synchronous connection in ``config.attributes["connection"]`` (the async
engine's connection through ``run_sync``), already inside a transaction
that holds the migration lock.
"""

from __future__ import annotations

from alembic import context

from rtportal.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through rtportal.db.migrate (python -m rtportal migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

"""Alembic migrations of rtportal (applied by ``rtportal.db.migrate.upgrade``)."""

"""Alembic migrations of rtportal (applied by ``rtportal.migrate.upgrade``)."""

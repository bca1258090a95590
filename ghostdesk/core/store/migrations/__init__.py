"""Alembic migrations for GhostDesk's SQLite database, run by `ghostdesk.core.store.db`."""

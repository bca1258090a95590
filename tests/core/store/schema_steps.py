"""Putting a test database file at an older schema revision, and writing rows into it with raw
SQL, the way an older GhostDesk release would have left it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command

from ghostdesk.core.store import db as db_module
from ghostdesk.core.store.db import alembic_config


def migrate(path: Path, revision: str, *, down: bool = False) -> None:
    """Run Alembic on the file at `path` up (or `down`) to `revision`."""
    step = command.downgrade if down else command.upgrade
    engine = db_module._create_engine(path)
    try:
        with engine.begin() as conn:
            step(alembic_config(conn), revision)
    finally:
        engine.dispose()


def run_sql(path: Path, statements: list[str]) -> None:
    """Run raw SQL statements on the file at `path`, in one transaction."""
    raw = sqlite3.connect(path)
    try:
        with raw:
            for sql in statements:
                raw.execute(sql)
    finally:
        raw.close()

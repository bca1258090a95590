"""Backups: consistent copies with readable names; old ones pruned per reason only."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ghostdesk.core.errors import StorageError
from ghostdesk.core.paths import DataPaths
from ghostdesk.core.store.backup import backup_database, list_backups
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import Database


def _contents(path: Path) -> set[str]:
    raw = sqlite3.connect(path)
    try:
        return {r[0] for r in raw.execute("SELECT content FROM messages")}
    finally:
        raw.close()


def test_backup_of_a_live_wal_database_has_every_commit(db: Database, paths: DataPaths) -> None:
    store = ConversationStore(db)
    cid = store.create_conversation().id
    for i in range(5):
        store.add_message(cid, "user", f"m{i}")
    # The database is open, so recent commits sit in the WAL, not yet in the main file.
    assert paths.database.with_name(paths.database.name + "-wal").stat().st_size > 0

    when = datetime(2026, 11, 25, 15, 1, 2)
    copy = backup_database(paths.database, paths.backups, "before upgrade 0001", now=when)
    assert copy.name == "ghostdesk-20261125-150102-before-upgrade-0001.sqlite3"
    assert _contents(copy) == {f"m{i}" for i in range(5)}
    raw = sqlite3.connect(copy)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # One self-contained file, not a WAL database needing side files.
        assert raw.execute("PRAGMA journal_mode").fetchall() == [("delete",)]
    finally:
        raw.close()
    assert not list(paths.backups.glob("*.partial"))


def test_two_backups_in_one_second_both_kept(db: Database, paths: DataPaths) -> None:
    when = datetime(2026, 1, 1)
    a = backup_database(paths.database, paths.backups, "manual", now=when)
    b = backup_database(paths.database, paths.backups, "manual", now=when)
    assert a != b and a.exists() and b.exists()
    assert list_backups(paths.backups, "manual") == [b, a]


def test_only_the_newest_backups_per_reason_are_kept(db: Database, paths: DataPaths) -> None:
    start = datetime(2026, 1, 1)
    other = backup_database(paths.database, paths.backups, "before-upgrade-0001", now=start)
    stranger = paths.backups / "my-own-copy.sqlite3"
    stranger.write_bytes(b"user file")
    made = [
        backup_database(
            paths.database, paths.backups, "daily", keep=3, now=start + timedelta(minutes=i)
        )
        for i in range(6)
    ]
    assert list_backups(paths.backups, "daily") == made[:2:-1]
    assert other.exists() and stranger.exists()
    assert list_backups(paths.backups) == [*made[:2:-1], other]


def test_database_backup_reports_storage_errors(db: Database, paths: DataPaths) -> None:
    paths.backups.rmdir()
    paths.backups.write_text("a file where the folder should be")
    with pytest.raises(StorageError, match="back up"):
        db.backup("manual")

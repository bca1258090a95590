"""A chat database SQLite can't read: how it is recognised (a read-only quick check) and how it
is kept, renamed aside with its journals, rather than deleted, so a new one can start."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path

from ghostdesk.core.errors import StorageError
from ghostdesk.core.store.storage_errors import says_damaged, storage_error_for


def is_readable_database(path: Path) -> bool:
    """False only when SQLite says the file is damaged or not a database at all.

    Other errors (locked, read-only, disk) propagate: the file may be fine, so it must not be
    set aside. The check connection is read-only: a normal one would, on closing, checkpoint
    the WAL into a possibly damaged file or delete a WAL it can't make sense of.
    """
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        if says_damaged(err):
            return False
        mapped = storage_error_for(err, path)
        if mapped is None:
            raise
        raise mapped from err
    return [r[0] for r in rows] == ["ok"]


def set_aside(path: Path) -> Path:
    """Rename a damaged database to `<name>.corrupt-<time>` (its -wal, -shm and -journal
    files with it); returns the new path."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    kept = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 2
    while kept.exists():
        kept = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    try:
        os.replace(path, kept)
        # SQLite finds a database's journals by name: keep them next to the renamed file.
        for suffix in ("-wal", "-shm", "-journal"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.replace(side, kept.with_name(kept.name + suffix))
    except OSError as err:
        raise StorageError(
            f"Your chat database ({path}) is damaged and could not be moved aside: {err}",
            hint="Move the file somewhere safe yourself, then start GhostDesk again.",
        ) from err
    return kept

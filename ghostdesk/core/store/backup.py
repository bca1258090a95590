"""Consistent copies of the SQLite database, taken before risky operations such as upgrades.

`sqlite3.Connection.backup` copies pages under SQLite's own locking, so the copy is consistent
even while the app writes in WAL mode (copying the file with `shutil` could miss the WAL). The
copy is written under a temporary name and renamed only when complete, so a crash never leaves
a half-written file that looks like a backup.

This module raises plain `OSError` / `sqlite3.Error`; `Database.backup` turns them into
`StorageError` messages a person can act on.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from datetime import datetime
from pathlib import Path

KEEP_PER_REASON = 10

_STAMP_FORMAT = "%Y%m%d-%H%M%S"
# ghostdesk-<YYYYMMDD-HHMMSS>[.<n>]-<reason>.sqlite3; <n> separates two backups in one second.
_NAME = re.compile(
    r"^ghostdesk-(?P<stamp>\d{8}-\d{6})(?:\.(?P<n>\d+))?-(?P<reason>[a-z0-9-]+)\.sqlite3$"
)


def backup_database(
    db_path: Path,
    backups_dir: Path,
    reason: str,
    *,
    keep: int = KEEP_PER_REASON,
    now: datetime | None = None,
) -> Path:
    """Copy `db_path` into `backups_dir` and return the new file.

    Only the newest `keep` backups with the same reason are kept; backups taken for other
    reasons (and any file this module did not name) are never deleted.
    """
    label = _reason_label(reason)
    backups_dir.mkdir(parents=True, exist_ok=True)
    target = _free_name(backups_dir, (now or datetime.now()).strftime(_STAMP_FORMAT), label)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        _copy(db_path, partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_dir(backups_dir)
    _prune(backups_dir, label, keep)
    return target


def list_backups(backups_dir: Path, reason: str | None = None) -> list[Path]:
    """Backups made by this module, newest first; only those for `reason` if given."""
    if not backups_dir.is_dir():
        return []
    label = None if reason is None else _reason_label(reason)
    found = []
    for path in backups_dir.iterdir():
        match = _NAME.match(path.name)
        if match and (label is None or match["reason"] == label):
            found.append(((match["stamp"], int(match["n"] or 1)), path))
    return [path for _, path in sorted(found, reverse=True)]


def _copy(db_path: Path, target: Path) -> None:
    source = sqlite3.connect(db_path)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
            # The copy inherits WAL mode; a backup should be one self-contained file.
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
    finally:
        source.close()
    with open(target, "rb+") as f:
        os.fsync(f.fileno())


def _reason_label(reason: str) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", reason.lower()).strip("-")
    return label or "manual"


def _free_name(folder: Path, stamp: str, label: str) -> Path:
    target = folder / f"ghostdesk-{stamp}-{label}.sqlite3"
    n = 2
    while target.exists():
        target = folder / f"ghostdesk-{stamp}.{n}-{label}.sqlite3"
        n += 1
    return target


def _prune(folder: Path, label: str, keep: int) -> None:
    for old in list_backups(folder, label)[keep:]:
        old.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

"""SQLite and disk errors as the StorageError a person reads: what happened to the chat
database or the data folder, and what to do about it. Also how to tell a damaged database
from a busy, locked or read-only one (only the damaged kind is set aside)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ghostdesk.core.errors import StorageError

# SQLite's primary result codes (extended codes carry them in the low byte).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_NOTADB = 26


def storage_error_for(err: BaseException | None, path: Path) -> StorageError | None:
    """The user-facing StorageError for a low-level disk or SQLite error, or None if unknown.

    `path` is the file or folder involved; messages name the folder a person would fix.
    """
    if err is None:
        return None
    folder = path if path.is_dir() else path.parent
    message = str(err).lower()
    if isinstance(err, OSError):
        if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return _disk_full()
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return _read_only(folder)
        if err.errno == errno.EIO:
            return _disk_error(path)
        return None
    code = _primary_code(err)
    if code == _SQLITE_FULL or "disk is full" in message:
        return _disk_full()
    if code in (_SQLITE_READONLY, _SQLITE_PERM) or "readonly" in message:
        if path.is_file() and not os.access(path, os.W_OK):
            return StorageError(
                f"The chat database file is read-only: {path}",
                hint="Make the file writable, then start GhostDesk again. Nothing was half-saved.",
            )
        return _read_only(folder)
    if code == _SQLITE_CANTOPEN or "unable to open database" in message:
        if not os.access(folder, os.W_OK):
            return _read_only(folder)
        return StorageError(
            f"GhostDesk could not open its database {path}.",
            hint="Check that the file and its folder exist and that you may write to them.",
        )
    if code == _SQLITE_IOERR or "disk i/o" in message:
        return _disk_error(path)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED) or "database is locked" in message:
        return StorageError(
            f"The chat database is busy: another program is using {path}.",
            hint="Close other GhostDesk windows or tools using it, then try again.",
        )
    if says_damaged(err):
        return StorageError(
            f"Your chat database is damaged: {path}.",
            hint="Restart GhostDesk: it keeps the damaged file aside and starts a new one. "
            "Backups are in the 'backups' folder next to it.",
        )
    return None


def _disk_full() -> StorageError:
    return StorageError(
        "The disk is full, so GhostDesk could not save.",
        hint="Free some disk space, then try again. Nothing was half-saved.",
    )


def _read_only(folder: Path) -> StorageError:
    return StorageError(
        f"The data folder is read-only: {folder}",
        hint="Make it writable, or set GHOSTDESK_HOME to a folder you can write to. "
        "Nothing was half-saved.",
    )


def _disk_error(path: Path) -> StorageError:
    return StorageError(
        f"A disk error stopped GhostDesk from reading or writing {path}.",
        hint="Check the drive (it may be disconnected or failing), then try again.",
    )


def _primary_code(err: BaseException) -> int | None:
    code = getattr(err, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def says_damaged(err: BaseException) -> bool:
    """Whether SQLite's error means the file is damaged or not a database at all."""
    message = str(err).lower()
    return (_primary_code(err) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
            or "not a database" in message or "malformed" in message)

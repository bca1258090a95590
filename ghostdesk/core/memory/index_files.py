"""The saved index on disk: the hnswlib file and its sidecar JSON, written atomically, and
checked before they are trusted.

The sidecar records the file's size, its SHA-256, the index parameters and a digest of the
crystal ids it holds. A saved index is used only when all of that still holds, the file passes
`check_hnsw_file`, and its ids are exactly the active crystals in SQLite; otherwise
`check_saved_index` says why, in words for the user's notice, and the index is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ghostdesk.core.memory.hnsw_file import HnswFileInfo, IndexFileError, check_hnsw_file

SIDECAR_FORMAT = 1
SPACE = "cosine"
_CHUNK = 1 << 20


class SavedIndexUnusable(Exception):
    """The saved index can't be used; the message says why ("file was missing", ...)."""


def ids_digest(ids: Iterable[int] | np.ndarray) -> str:
    """SHA-256 over the sorted ids: equal exactly when the two id sets are equal."""
    array = np.unique(np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids,
                                 dtype=np.int64))
    return hashlib.sha256(array.astype("<i8").tobytes()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def check_saved_index(path: Path, sidecar_path: Path, *, dim: int, M: int,
                      active: np.ndarray) -> HnswFileInfo:
    """What the saved file holds, if it is intact, made with these settings and holds exactly
    the `active` ids; raises SavedIndexUnusable otherwise."""
    if not path.exists():
        raise SavedIndexUnusable("file was missing")
    try:
        meta = json.loads(sidecar_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not an object")
    except FileNotFoundError:
        raise SavedIndexUnusable("description file (sidecar) was missing") from None
    except (OSError, ValueError) as err:
        raise SavedIndexUnusable(f"description file (sidecar) was unreadable ({err})") from None
    wanted = {"format": SIDECAR_FORMAT, "space": SPACE, "dim": dim, "M": M}
    for key, value in wanted.items():
        if meta.get(key) != value:
            raise SavedIndexUnusable(
                f"was made with other settings ({key} {meta.get(key)!r}, now {value!r})")
    if meta.get("count") != active.shape[0] or meta.get("ids_sha256") != ids_digest(active):
        raise SavedIndexUnusable("was out of step with the database")
    try:
        size = path.stat().st_size
    except OSError as err:
        raise SavedIndexUnusable(f"file could not be read ({err})") from None
    if size != meta.get("file_bytes"):
        raise SavedIndexUnusable("file was truncated or changed (size mismatch)")
    try:
        if file_sha256(path) != meta.get("file_sha256"):
            raise SavedIndexUnusable("file was damaged (checksum mismatch)")
        info = check_hnsw_file(path, dim, M)
    except IndexFileError as err:
        raise SavedIndexUnusable(f"file was malformed ({err})") from None
    except OSError as err:
        raise SavedIndexUnusable(f"file could not be read ({err})") from None
    if info.elements != meta.get("elements") or ids_digest(info.live_labels) != meta.get(
        "ids_sha256"
    ):
        raise SavedIndexUnusable("file did not match its description")
    return info


def write_index_files(index: Any, path: Path, sidecar_path: Path, *, dim: int, M: int,
                      ef_construction: int) -> None:
    """Save the hnswlib `index` to `path` and its sidecar, atomically: temp files, fsync,
    `os.replace`. The written file is checked as the next open will check it."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp_index = _temp_path(folder, path.name)
    tmp_meta = _temp_path(folder, sidecar_path.name)
    try:
        index.save_index(str(tmp_index))
        _fsync_file(tmp_index)
        info = check_hnsw_file(tmp_index, dim, M)  # what the next open checks
        meta = {
            "format": SIDECAR_FORMAT,
            "space": SPACE,
            "dim": dim,
            "M": M,
            "ef_construction": ef_construction,
            "elements": info.elements,
            "count": int(info.live_labels.shape[0]),
            "ids_sha256": ids_digest(info.live_labels),
            "file_bytes": tmp_index.stat().st_size,
            "file_sha256": file_sha256(tmp_index),
            "saved_at": time.time(),
        }
        with open(tmp_meta, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_index, path)
        os.replace(tmp_meta, sidecar_path)
        _fsync_dir(folder)
    finally:
        for tmp in (tmp_index, tmp_meta):
            tmp.unlink(missing_ok=True)


def _temp_path(folder: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    return Path(tmp)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return  # directories can't be opened for fsync on Windows; os.replace is atomic there
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

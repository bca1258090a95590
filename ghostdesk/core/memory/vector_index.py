"""The hot index of crystal vectors: hnswlib (HNSW graph, cosine), a rebuildable cache.

SQLite holds every vector; this index only makes "which crystals are near this vector?" fast.
So it is treated as a cache that may be thrown away at any time:

- Saved atomically (temp file, fsync, `os.replace`) with a sidecar JSON that records its size,
  a SHA-256 of the file, its parameters, and a digest of the crystal ids it holds.
- On open, it is rebuilt from SQLite when the file or sidecar is missing, the file is
  truncated or changed (checksum), its structure is not what this code writes, or its ids
  differ from the active crystals in SQLite. `IndexLoad.notice` says what happened.
- hnswlib parses its file in native code without bounds checks (a crafted file can overflow
  the heap, nmslib/hnswlib#673), so a file reaches `load_index` only when its checksum
  matches and `check_hnsw_file` has checked every offset, count and neighbour id in it.
- hnswlib is not thread-safe for mixed use (add and query must not overlap; resize with
  neither), so every call into it holds one lock. `ef` is not saved: set after every load.
- Removed crystals are marked deleted (tombstones, never returned by queries); a forgotten
  crystal's vector is overwritten first, so it does not linger in the saved file either.
  Many tombstones make the graph slow: `needs_compaction` tells when to rebuild.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ghostdesk.core.errors import GhostDeskError

log = logging.getLogger(__name__)

SIDECAR_FORMAT = 1
SPACE = "cosine"
# hnswlib's saveIndex header: offsetLevel0, max_elements, cur_element_count,
# size_data_per_element, label_offset, offsetData (size_t), maxlevel (int),
# enterpoint_node (uint32), maxM, maxM0, M (size_t), mult (double), ef_construction (size_t).
_HEADER = struct.Struct("<QQQQQQiIQQQdQ")
_DELETE_MARK = 0x01
_CHUNK = 1 << 20
MIN_CAPACITY = 1024
"""Slots allocated at least when an index is built; it grows by half when full."""


class IndexSource(Protocol):
    """What the index is rebuilt from and checked against: the active crystals in SQLite."""

    def active_ids(self) -> np.ndarray:
        """Ids of the crystals that belong in the index (int64, any order)."""
        ...

    def iter_active_vectors(self, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids int64, vectors float32 (n, dim)) in batches of at most `batch` rows."""
        ...


@dataclass(frozen=True)
class IndexLoad:
    """What `CrystalIndex.open` did."""

    rebuilt: bool
    reason: str
    """Why it was rebuilt ("" when the saved index was loaded as it was)."""
    count: int
    """Crystals in the index now."""
    seconds: float
    notice: str | None
    """A sentence for the user when something was repaired; None when nothing was wrong."""


class IndexUnavailableError(GhostDeskError):
    """hnswlib is missing from this installation."""


def _hnswlib() -> Any:
    try:
        import hnswlib
    except ImportError as err:
        raise IndexUnavailableError(
            "The memory index library (hnswlib) is not installed, so memories can't be "
            "recalled.", hint="Reinstall GhostDesk.") from err
    return hnswlib


class IndexFileError(Exception):
    """The index file is not one this code would have written (damaged or crafted)."""


@dataclass(frozen=True)
class HnswFileInfo:
    elements: int
    labels: np.ndarray
    deleted: np.ndarray
    """Boolean mask over `labels`."""

    @property
    def live_labels(self) -> np.ndarray:
        return self.labels[~self.deleted]


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


def check_hnsw_file(path: Path, dim: int, M: int) -> HnswFileInfo:
    """Check that `path` is a well-formed hnswlib (0.8) float index of `dim` and `M`.

    Reads it without hnswlib: every size and offset in the header, every neighbour count and
    id on every level, the entry point and the exact file length. Raises IndexFileError on the
    first thing that is off. Memory-mapped, so a large file costs no large allocation.
    """
    size = path.stat().st_size
    if size < _HEADER.size:
        raise IndexFileError(f"file is {size} bytes, shorter than the header")
    with open(path, "rb") as fh:
        header = _HEADER.unpack(fh.read(_HEADER.size))
    (offset_level0, max_elements, count, per_element, label_offset, offset_data, max_level,
     entry_point, max_m, max_m0, m, mult, ef_construction) = header
    links0 = max_m0 * 4 + 4
    expected = {
        "offsetLevel0": (offset_level0, 0),
        "M": (m, M),
        "maxM": (max_m, M),
        "maxM0": (max_m0, 2 * M),
        "offsetData": (offset_data, 2 * M * 4 + 4),
        "label_offset": (label_offset, 2 * M * 4 + 4 + dim * 4),
        "size_data_per_element": (per_element, 2 * M * 4 + 4 + dim * 4 + 8),
    }
    for name, (got, want) in expected.items():
        if got != want:
            raise IndexFileError(f"{name} is {got}, expected {want}")
    if not (count <= max_elements <= max(count, 1) * 64 + 1_000_000):
        raise IndexFileError(f"max_elements {max_elements} does not fit {count} elements")
    if not (math.isfinite(mult) and 0 < mult < 10) or not 1 <= ef_construction <= 1_000_000:
        raise IndexFileError("construction parameters out of range")
    level0_bytes = count * per_element
    if size < _HEADER.size + level0_bytes + 4 * count:
        raise IndexFileError(f"file is truncated ({size} bytes for {count} elements)")
    if count == 0:
        if size != _HEADER.size:
            raise IndexFileError("an empty index with trailing bytes")
        return HnswFileInfo(0, np.zeros(0, np.int64), np.zeros(0, bool))

    raw = np.memmap(path, dtype=np.uint8, mode="r")
    level0 = raw[_HEADER.size:_HEADER.size + level0_bytes].reshape(count, per_element)
    labels = np.empty(count, dtype=np.int64)
    deleted = np.empty(count, dtype=bool)
    rows = 65_536  # checked in slices: a copy of the whole level 0 could be gigabytes
    for first in range(0, count, rows):
        part = np.ascontiguousarray(level0[first:first + rows])
        counts = part[:, 0:2].copy().view("<u2").ravel()
        flags, spare = part[:, 2], part[:, 3]
        if counts.max(initial=0) > max_m0:
            raise IndexFileError("a level-0 neighbour list is longer than maxM0")
        if np.any(flags & ~np.uint8(_DELETE_MARK)) or np.any(spare):
            raise IndexFileError("unknown flags in a level-0 list header")
        neighbours = part[:, 4:links0].copy().view("<u4")
        used = np.arange(max_m0)[None, :] < counts[:, None]
        if np.any(neighbours[used] >= count):
            raise IndexFileError("a level-0 neighbour id points outside the index")
        if not np.all(np.isfinite(part[:, offset_data:label_offset].copy().view("<f4"))):
            raise IndexFileError("a vector holds NaN or infinity")
        part_labels = part[:, label_offset:per_element].copy().view("<u8").ravel()
        if part_labels.max(initial=0) >= 2**62:
            raise IndexFileError("a label is out of range")
        labels[first:first + rows] = part_labels.astype(np.int64)
        deleted[first:first + rows] = (flags & _DELETE_MARK).astype(bool)
    if np.unique(labels).shape[0] != count:
        raise IndexFileError("two elements share a label")

    # Upper levels: per element a uint32 byte count, then that many bytes of link lists.
    per_level = max_m * 4 + 4
    tail = bytes(raw[_HEADER.size + level0_bytes:])  # small: ~4 bytes per element + links
    del raw, level0
    pos, top, levels_of_entry = 0, 0, -1
    tail_len = len(tail)
    read_u32 = struct.Struct("<I").unpack_from
    for element in range(count):
        if pos + 4 > tail_len:
            raise IndexFileError("file is truncated inside the upper levels")
        (nbytes,) = read_u32(tail, pos)
        pos += 4
        levels = 0
        if nbytes:
            if nbytes % per_level or pos + nbytes > tail_len:
                raise IndexFileError("an upper-level link list has a bad size")
            levels = nbytes // per_level
            block = np.frombuffer(tail, "<u4", nbytes // 4, pos).reshape(levels, max_m + 1)
            if np.any(block[:, 0] > max_m):
                raise IndexFileError("an upper-level neighbour list is longer than maxM")
            used = np.arange(max_m)[None, :] < block[:, :1]
            if np.any(block[:, 1:][used] >= count):
                raise IndexFileError("an upper-level neighbour id points outside the index")
            top = max(top, levels)
            pos += nbytes
        if element == entry_point:
            levels_of_entry = levels
    if pos != tail_len:
        raise IndexFileError("trailing bytes after the last element")
    if entry_point >= count or max_level != top or levels_of_entry != max_level:
        raise IndexFileError("the entry point or top level is inconsistent")
    return HnswFileInfo(count, labels, deleted)


class CrystalIndex:
    """An hnswlib index of crystal vectors in `folder`, keyed by crystal id. Thread-safe."""

    def __init__(
        self,
        folder: Path,
        dim: int,
        *,
        M: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        name: str = "crystals",
        build_threads: int = -1,
    ) -> None:
        self.folder = Path(folder)
        self.dim = dim
        self.M = M
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.build_threads = build_threads
        self.path = self.folder / f"{name}.hnsw"
        self.sidecar_path = self.folder / f"{name}.hnsw.json"
        self._lock = threading.RLock()
        self._index: Any = None
        self._deleted: set[int] = set()
        self._dirty = False
        self.last_saved: float = 0.0

    # -- opening -------------------------------------------------------------------------

    def open(self, source: IndexSource) -> IndexLoad:
        """Load the saved index if it is intact and in step with `source`, else rebuild it."""
        started = time.perf_counter()
        with self._lock:
            active = np.asarray(source.active_ids(), dtype=np.int64)
            reason = self._try_load(active)
            if reason is None:
                return IndexLoad(False, "", self.count, time.perf_counter() - started, None)
            existed = self.path.exists() or self.sidecar_path.exists()
            log.log(logging.WARNING if existed else logging.INFO,
                    "memory index %s: %s; rebuilding from the database", self.path, reason)
            self._rebuild_locked(source, expected=active.shape[0])
            seconds = time.perf_counter() - started
            notice = None
            if existed or self.count:
                notice = (
                    f"The memory index {reason}, so it was rebuilt from the database "
                    f"({self.count} memories, {seconds:.1f} s). No memory was lost."
                )
            return IndexLoad(True, reason, self.count, seconds, notice)

    def _try_load(self, active: np.ndarray) -> str | None:
        """Load the saved index; returns why it can't be used, or None when loaded."""
        if not self.path.exists():
            return "file was missing"
        try:
            meta = json.loads(self.sidecar_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not an object")
        except FileNotFoundError:
            return "description file (sidecar) was missing"
        except (OSError, ValueError) as err:
            return f"description file (sidecar) was unreadable ({err})"
        wanted = {"format": SIDECAR_FORMAT, "space": SPACE, "dim": self.dim, "M": self.M}
        for key, value in wanted.items():
            if meta.get(key) != value:
                return f"was made with other settings ({key} {meta.get(key)!r}, now {value!r})"
        if meta.get("count") != active.shape[0] or meta.get("ids_sha256") != ids_digest(active):
            return "was out of step with the database"
        try:
            size = self.path.stat().st_size
        except OSError as err:
            return f"file could not be read ({err})"
        if size != meta.get("file_bytes"):
            return "file was truncated or changed (size mismatch)"
        try:
            if file_sha256(self.path) != meta.get("file_sha256"):
                return "file was damaged (checksum mismatch)"
            info = check_hnsw_file(self.path, self.dim, self.M)
        except IndexFileError as err:
            return f"file was malformed ({err})"
        except OSError as err:
            return f"file could not be read ({err})"
        if info.elements != meta.get("elements") or ids_digest(info.live_labels) != meta.get(
            "ids_sha256"
        ):
            return "file did not match its description"
        index = _hnswlib().Index(space=SPACE, dim=self.dim)
        try:
            index.load_index(str(self.path), max_elements=max(info.elements, MIN_CAPACITY))
        except (RuntimeError, MemoryError, ValueError) as err:
            return f"file could not be loaded ({err})"
        index.set_ef(self.ef_search)
        self._index = index
        self._deleted = {int(x) for x in info.labels[info.deleted]}
        self._dirty = False
        self.last_saved = time.monotonic()
        return None

    def rebuild(self, source: IndexSource) -> int:
        """Build the index again from `source` and save it; returns the number of crystals."""
        with self._lock:
            self._rebuild_locked(source)
            return self.count

    def _rebuild_locked(self, source: IndexSource, expected: int = 0) -> None:
        self._index = self._new_index(max(MIN_CAPACITY, int(expected * 1.25)))
        self._deleted = set()
        for ids, vectors in source.iter_active_vectors(50_000):
            if len(ids):
                self._add_locked(np.asarray(ids, np.int64), vectors)
        self._dirty = True
        try:
            self._save_locked()
        except OSError as err:  # still usable in memory; the next start rebuilds again
            log.warning("could not save the rebuilt memory index in %s: %s", self.folder, err)

    def _new_index(self, capacity: int) -> Any:
        index = _hnswlib().Index(space=SPACE, dim=self.dim)
        index.init_index(max_elements=capacity, M=self.M, ef_construction=self.ef_construction)
        index.set_ef(self.ef_search)
        return index

    # -- changes -------------------------------------------------------------------------

    def add(self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add crystals, or replace the vectors of ids already there (deleted ones come back)."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, np.int64)
        if ids.shape[0] == 0:
            return
        with self._lock:
            self._add_locked(ids, vectors)

    def _add_locked(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        index = self._require()
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        needed = index.element_count + len(ids)
        if needed > index.max_elements:
            # Growing copies the whole graph: grow by half at least, so it happens rarely.
            index.resize_index(max(needed, int(index.max_elements * 1.5) + MIN_CAPACITY))
        threads = 1 if len(ids) < 64 else self.build_threads
        index.add_items(vectors, ids, num_threads=threads)
        self._deleted.difference_update(int(i) for i in ids)
        self._dirty = True

    def remove(self, ids: Iterable[int], *, scrub: bool = False) -> None:
        """Take crystals out of the results. `scrub` first overwrites their stored vectors
        (for a forgotten crystal, whose vector must not stay in the saved file)."""
        with self._lock:
            index = self._require()
            present = set(index.get_ids_list()) if scrub else None
            for label in (int(i) for i in ids):
                if scrub and present is not None and label in present:
                    noise = np.random.default_rng(label).standard_normal(self.dim)
                    index.add_items(noise.astype(np.float32)[None, :], [label], num_threads=1)
                    self._deleted.discard(label)
                if label in self._deleted:
                    continue
                try:
                    index.mark_deleted(label)
                except RuntimeError:  # not in the index
                    continue
                self._deleted.add(label)
                self._dirty = True

    # -- queries -------------------------------------------------------------------------

    def query(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` nearest crystals: (ids int64, cosine similarities), most similar first."""
        query = np.asarray(vector, dtype=np.float32).reshape(1, self.dim)
        with self._lock:
            index = self._require()
            live = index.element_count - len(self._deleted)
            k = min(k, live)
            if k <= 0:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            ef = max(self.ef_search, k)
            while True:
                index.set_ef(ef)
                try:
                    labels, distances = index.knn_query(query, k=k, num_threads=1)
                    break
                except RuntimeError:
                    # Tombstones can hide results from a narrow search: widen it, then ask
                    # for fewer.
                    if ef < 8 * max(self.ef_search, k):
                        ef *= 2
                    elif k > 1:
                        k //= 2
                    else:
                        return np.zeros(0, np.int64), np.zeros(0, np.float32)
                finally:
                    index.set_ef(self.ef_search)
        return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)

    def live_ids(self) -> np.ndarray:
        """Ids the index can return, sorted."""
        with self._lock:
            index = self._require()
            labels = np.asarray(index.get_ids_list(), dtype=np.int64)
            if self._deleted:
                labels = labels[~np.isin(labels, np.fromiter(self._deleted, np.int64))]
            return np.sort(labels)

    @property
    def count(self) -> int:
        with self._lock:
            if self._index is None:
                return 0
            return int(self._index.element_count) - len(self._deleted)

    @property
    def tombstones(self) -> int:
        with self._lock:
            return len(self._deleted)

    @property
    def dirty(self) -> bool:
        return self._dirty

    def needs_compaction(self) -> bool:
        """Many deleted entries slow searches down and waste memory: time to rebuild."""
        with self._lock:
            return len(self._deleted) > max(256, self.count // 4)

    # -- saving --------------------------------------------------------------------------

    def save(self) -> bool:
        """Write the index and its sidecar atomically if anything changed; True if written."""
        with self._lock:
            return self._save_locked()

    def _save_locked(self) -> bool:
        index = self._require()
        if not self._dirty:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp_index = _temp_path(self.folder, self.path.name)
        tmp_meta = _temp_path(self.folder, self.sidecar_path.name)
        try:
            index.save_index(str(tmp_index))
            _fsync_file(tmp_index)
            info = check_hnsw_file(tmp_index, self.dim, self.M)  # what the next open checks
            meta = {
                "format": SIDECAR_FORMAT,
                "space": SPACE,
                "dim": self.dim,
                "M": self.M,
                "ef_construction": self.ef_construction,
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
            os.replace(tmp_index, self.path)
            os.replace(tmp_meta, self.sidecar_path)
            _fsync_dir(self.folder)
        finally:
            for tmp in (tmp_index, tmp_meta):
                tmp.unlink(missing_ok=True)
        self._dirty = False
        self.last_saved = time.monotonic()
        return True

    def close(self, *, save: bool = True) -> None:
        """Save (unless told not to) and free the index."""
        with self._lock:
            if self._index is not None:
                if save:
                    self._save_locked()
                self._index = None

    def _require(self) -> Any:
        if self._index is None:
            raise RuntimeError("the memory index is not open")
        return self._index


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

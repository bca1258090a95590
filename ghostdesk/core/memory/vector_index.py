"""The hot index of crystal vectors: hnswlib (HNSW graph, cosine), a rebuildable cache.

SQLite holds every vector; this index only makes "which crystals are near this vector?" fast.
So it is treated as a cache that may be thrown away at any time:

- Saved atomically with a sidecar JSON, and on open rebuilt from SQLite when the saved pair
  is missing, damaged, made with other settings, or out of step with the active crystals
  (index_files.py; hnsw_file.py checks the file before hnswlib may parse it).
  `IndexLoad.notice` says what happened.
- hnswlib is not thread-safe for mixed use (add and query must not overlap; resize with
  neither), so every call into it holds one lock. `ef` is not saved: set after every load.
- Removed crystals are marked deleted (tombstones, never returned by queries); a forgotten
  crystal's vector is overwritten first, so it does not linger in the saved file either.
  Many tombstones make the graph slow: `needs_compaction` tells when to rebuild.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.memory.index_files import (
    SPACE,
    SavedIndexUnusable,
    check_saved_index,
    write_index_files,
)

log = logging.getLogger(__name__)

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
        try:
            info = check_saved_index(self.path, self.sidecar_path, dim=self.dim, M=self.M,
                                     active=active)
        except SavedIndexUnusable as why:
            return str(why)
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
        write_index_files(index, self.path, self.sidecar_path, dim=self.dim, M=self.M,
                          ef_construction=self.ef_construction)
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

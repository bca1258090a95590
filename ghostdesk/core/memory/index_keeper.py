"""Keeping the hot index in step with SQLite: opening it, the lock for changes, saving it.

SQLite is the truth and the hnswlib index a cache of it. Every change to memory is written to
SQLite first, then applied to the index, while holding `changes`, so two changes never
interleave. Saving is throttled (`save_interval_s`); a save that fails never fails the
user's action: memories are safe in SQLite and the next start rebuilds the index.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ghostdesk.core.memory.crystal_vectors import CrystalVectors
from ghostdesk.core.memory.embedder import Embedder
from ghostdesk.core.memory.settings import MemorySettings
from ghostdesk.core.memory.vector_index import CrystalIndex, IndexLoad

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Consistency:
    """SQLite's active crystals against the ids the index can return."""

    sqlite_active: int
    index_live: int
    missing_from_index: tuple[int, ...] = ()
    not_in_sqlite: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing_from_index and not self.not_in_sqlite


class IndexKeeper:
    """The index of one memory folder, opened, saved and checked against `vectors`."""

    def __init__(self, folder: Path, embedder: Embedder, vectors: CrystalVectors,
                 settings: MemorySettings) -> None:
        self.folder = Path(folder)
        self.embedder = embedder
        self.vectors = vectors
        self.settings = settings
        self.index = CrystalIndex(
            self.folder, embedder.dim, M=settings.hnsw_m,
            ef_construction=settings.hnsw_ef_construction, ef_search=settings.hnsw_ef_search)
        self.changes = threading.RLock()
        """Held by every change to crystals and the index, so two changes never interleave."""
        self.notices: list[str] = []
        """Sentences for the user about repairs (index rebuilt, memories re-read...)."""
        self.last_index_load: IndexLoad | None = None
        self._open = False

    def start(self) -> IndexLoad:
        """Re-embed crystals made by another model, then load or rebuild the index."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.changes:
            reembedded = self._reembed_foreign()
            load = self.index.open(self.vectors)
            if (reembedded and not load.rebuilt) or self.index.needs_compaction():
                self.index.rebuild(self.vectors)
            if load.notice:
                self.notices.append(load.notice)
            self.last_index_load = load
            self._open = True
            return load

    def _reembed_foreign(self) -> int:
        stale = self.vectors.ids_needing_embedding(self.embedder.name, self.embedder.dim)
        if not stale:
            return 0
        started = time.perf_counter()
        for first in range(0, len(stale), 256):
            texts = self.vectors.texts(stale[first:first + 256])
            ids = list(texts)
            vectors = self.embedder.embed([texts[i] for i in ids])
            self.vectors.set_vectors(dict(zip(ids, vectors, strict=True)), self.embedder.name)
        self.notices.append(
            f"Memories were re-read with the memory model {self.embedder.name} "
            f"({len(stale)} memories, {time.perf_counter() - started:.1f} s).")
        return len(stale)

    def close(self) -> None:
        """Save the index (if it changed) and free it."""
        with self.changes:
            if self._open:
                self.save()
                self.index.close(save=False)
                self._open = False

    def save_soon(self) -> None:
        """Save if the index changed and the last save is `save_interval_s` ago."""
        if not self.index.dirty:
            return
        if time.monotonic() - self.index.last_saved >= self.settings.save_interval_s:
            self.save()

    def save(self) -> None:
        """Write the index if it changed. The index is a cache: a failure to write it (disk
        full, read-only folder) never fails the user's action; it is told once, and the next
        start rebuilds the index from SQLite."""
        with self.changes:
            try:
                self.index.save()
            except OSError as err:
                log.warning("could not save the memory index in %s: %s", self.folder, err)
                notice = (f"GhostDesk could not save its memory index in {self.folder} "
                          f"({err.strerror or err}). Memories are safe in the database; the "
                          "index will be rebuilt at the next start.")
                if notice not in self.notices:
                    self.notices.append(notice)

    def tidy(self) -> None:
        """Rebuild the index if deleted entries have piled up, then save it."""
        with self.changes:
            if self.index.needs_compaction():
                self.index.rebuild(self.vectors)
            self.save()

    def rebuild(self) -> int:
        """Rebuild the index from SQLite (the truth); returns the crystals indexed."""
        with self.changes:
            return self.index.rebuild(self.vectors)

    def check_consistency(self) -> Consistency:
        """Compare SQLite's active crystals with the index (holds the change lock)."""
        with self.changes:
            active = set(self.vectors.active_ids().tolist())
            live = set(self.index.live_ids().tolist())
        return Consistency(len(active), len(live), tuple(sorted(active - live)),
                           tuple(sorted(live - active)))

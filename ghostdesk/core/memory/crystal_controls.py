"""The user's controls over memories: pin, edit, importance, archive, restore, forget, and
the forgetting sweep that moves stale crystals to the archive.

Each change is made in SQLite first, then in the index, holding the keeper's change lock.
"Forget" deletes for good and saves the index at once, so the vector is gone from disk too.
"""

from __future__ import annotations

from dataclasses import dataclass

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.memory.clock import Clock
from ghostdesk.core.memory.crystal_record import CrystalRecord
from ghostdesk.core.memory.crystals import CrystalStore
from ghostdesk.core.memory.embedder import Embedder
from ghostdesk.core.memory.forgetting import ForgettingPolicy
from ghostdesk.core.memory.index_keeper import IndexKeeper


@dataclass(frozen=True, eq=False)
class CrystalControls:
    """Changes to existing crystals, kept in step between SQLite and the index."""

    keeper: IndexKeeper
    crystals: CrystalStore
    embedder: Embedder
    policy: ForgettingPolicy
    clock: Clock

    def pin(self, crystal_id: int, pinned: bool = True) -> CrystalRecord:
        """Pinned crystals never fade to the archive; pinning an archived one restores it."""
        with self.keeper.changes:
            record = self.crystals.set_pinned(crystal_id, pinned)
            if pinned and record.archived:
                record = self._restore_locked(crystal_id)
        self.keeper.save_soon()
        return record

    def edit(self, crystal_id: int, text: str) -> CrystalRecord:
        text = " ".join(text.split())
        if not text:
            raise GhostDeskError("A memory can't be empty; use Forget to remove it.")
        vector = self.embedder.embed([text])[0]
        with self.keeper.changes:
            record = self.crystals.edit(crystal_id, text, vector, self.embedder.name)
            if not record.archived:
                self.keeper.index.add([crystal_id], vector[None, :])
        self.keeper.save_soon()
        return record

    def set_importance(self, crystal_id: int, importance: float) -> CrystalRecord:
        return self.crystals.set_importance(crystal_id, importance)

    def forget(self, crystal_id: int) -> bool:
        """Delete a crystal for good: its row, vector, sources and every recall of it, and
        its entry in the index (overwritten, then saved). False if it did not exist."""
        with self.keeper.changes:
            existed = self.crystals.delete(crystal_id)
            self.keeper.index.remove([crystal_id], scrub=True)
            self.keeper.save()
        return existed

    def archive(self, crystal_id: int) -> CrystalRecord:
        """Move to the archive now. A pinned crystal must be unpinned first (GhostDeskError)."""
        with self.keeper.changes:
            record = self.crystals.get(crystal_id)
            if record.pinned:
                raise GhostDeskError("A pinned memory can't be archived; unpin it first.")
            self.crystals.archive([crystal_id])
            self.keeper.index.remove([crystal_id])
        self.keeper.save_soon()
        return self.crystals.get(crystal_id)

    def restore(self, crystal_id: int) -> CrystalRecord:
        """Back from the archive into recall."""
        with self.keeper.changes:
            record = self._restore_locked(crystal_id)
        self.keeper.save_soon()
        return record

    def _restore_locked(self, crystal_id: int) -> CrystalRecord:
        record = self.crystals.restore(crystal_id)
        _, vector = self.crystals.get_many([crystal_id])[crystal_id]
        self.keeper.index.add([crystal_id], vector[None, :])
        return record

    def run_forgetting(self) -> list[int]:
        """Archive every crystal that has not resonated for `archive_after_days`."""
        cutoff = self.policy.cutoff(self.clock())
        with self.keeper.changes:
            moved = self.crystals.archive(self.crystals.stale_ids(cutoff),
                                          only_stale_before=cutoff)
            if moved:
                self.keeper.index.remove(moved)
        if moved:
            self.keeper.save_soon()
        return moved

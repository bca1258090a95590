"""Forgetting to cold storage: crystals that have not resonated for a while leave the index.

A crystal is stale when it has not been recalled (or, if never recalled, created, or last
restored) for `archive_after_days`. Stale crystals move to the archive: still in SQLite,
searchable by text and meaning, restorable, but no longer recalled. Pinned crystals never
move. Nothing is deleted here; only "forget" deletes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ghostdesk.core.memory.crystal_record import CrystalRecord

DEFAULT_ARCHIVE_AFTER_DAYS = 60.0


@dataclass(frozen=True)
class ForgettingPolicy:
    archive_after_days: float = DEFAULT_ARCHIVE_AFTER_DAYS

    def cutoff(self, now: datetime) -> datetime:
        """Crystals that last resonated before this moment are stale."""
        return now - timedelta(days=self.archive_after_days)

    def is_stale(self, crystal: CrystalRecord, now: datetime) -> bool:
        return (not crystal.pinned and not crystal.archived
                and crystal.last_resonated_at < self.cutoff(now))

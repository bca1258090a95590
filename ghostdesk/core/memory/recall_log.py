"""Which crystals each reply used (`crystal_recalls`), and how often each crystal was recalled.

The window shows a reply's recalled memories under it from these rows; a recall also counts
as a resonance (`last_recalled_at`), which keeps the crystal out of the archive.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, select, update

from ghostdesk.core.errors import NotFoundError
from ghostdesk.core.memory.clock import Clock, system_clock
from ghostdesk.core.memory.crystal_record import StoredRecall, records_of
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import Crystal, CrystalRecall, Message


class RecallLog:
    """Reads and writes recall provenance in one Database. Safe to share across threads."""

    def __init__(self, db: Database, clock: Clock = system_clock) -> None:
        self._db = db
        self._clock = clock

    def mark_recalled(self, ids: Iterable[int]) -> None:
        """Count one recall of each crystal, now."""
        ids = list(ids)
        if not ids:
            return
        now = self._clock()
        with self._db.session() as s:
            s.execute(update(Crystal).where(Crystal.id.in_(ids)).values(
                last_recalled_at=now, recall_count=Crystal.recall_count + 1))

    def record_recalls(self, message_id: int, recalls: Iterable[tuple[int, float, int]]) -> int:
        """Store which crystals (id, score, rank) a reply used; replaces earlier rows for it.
        Crystals forgotten in the meantime are skipped. Returns the rows stored."""
        recalls = list(recalls)
        with self._db.session() as s:
            if s.get(Message, message_id) is None:
                raise NotFoundError(f"Message {message_id} does not exist.")
            s.execute(delete(CrystalRecall).where(CrystalRecall.message_id == message_id))
            ids = [cid for cid, _, _ in recalls]
            alive = set(s.scalars(select(Crystal.id).where(Crystal.id.in_(ids))))
            rows = [CrystalRecall(message_id=message_id, crystal_id=cid, score=float(score),
                                  rank=int(rank))
                    for cid, score, rank in recalls if cid in alive]
            s.add_all(rows)
            return len(rows)

    def recalls_for_message(self, message_id: int) -> list[StoredRecall]:
        """The crystals reply `message_id` used, in prompt order."""
        query = (select(CrystalRecall, Crystal)
                 .join(Crystal, Crystal.id == CrystalRecall.crystal_id)
                 .where(CrystalRecall.message_id == message_id)
                 .order_by(CrystalRecall.rank))
        with self._db.read_session() as s:
            pairs = [(r, c) for r, c in s.execute(query)]
            records = records_of(s, [c for _, c in pairs])
            return [StoredRecall(record, r.score, r.rank)
                    for (r, _), record in zip(pairs, records, strict=True)]

    def recall_count_rows(self, crystal_id: int | None = None) -> int:
        """Stored recall rows, of one crystal or of all."""
        query = select(func.count()).select_from(CrystalRecall)
        if crystal_id is not None:
            query = query.where(CrystalRecall.crystal_id == crystal_id)
        with self._db.read_session() as s:
            return int(s.scalar(query) or 0)

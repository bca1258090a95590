"""Memory crystals in SQLite, the source of truth: add, merge, edit, archive, delete, read.

Each operation is one short transaction and returns frozen records (crystal_record.py), never
ORM objects. The hot index is not touched here; `IndexKeeper` keeps it in step with these
rows. Which replies recalled a crystal is in recall_log.py; vectors in bulk in
crystal_vectors.py.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from ghostdesk.core.errors import NotFoundError
from ghostdesk.core.memory.clock import Clock, system_clock
from ghostdesk.core.memory.crystal_record import CrystalRecord, record_of, records_of
from ghostdesk.core.memory.embedder import vector_from_bytes, vector_to_bytes
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import (
    Crystal,
    CrystalRecall,
    CrystalSource,
    Message,
    UTCDateTime,
)

log = logging.getLogger(__name__)

KINDS = frozenset({"fact", "manual", "document"})
MAX_TEXT = 4000


def clamp_importance(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


class CrystalStore:
    """Reads and writes crystals in one Database. Safe to share across threads."""

    def __init__(self, db: Database, clock: Clock = system_clock) -> None:
        self._db = db
        self._clock = clock

    # -- writing -------------------------------------------------------------------------

    def add(
        self,
        text: str,
        vector: np.ndarray,
        *,
        kind: str,
        embed_model: str,
        importance: float = 0.5,
        source_message_ids: Iterable[int] = (),
        source: str | None = None,
        pinned: bool = False,
    ) -> CrystalRecord:
        if kind not in KINDS:
            raise ValueError(f"unknown crystal kind {kind!r}")
        now = self._clock()
        vector = np.asarray(vector, dtype=np.float32).ravel()
        with self._db.session() as s:
            row = Crystal(
                kind=kind,
                text=text[:MAX_TEXT],
                source=source[:500] if source else None,
                importance=clamp_importance(importance),
                pinned=pinned,
                archived=False,
                created_at=now,
                updated_at=now,
                recall_count=0,
                embed_model=embed_model,
                dim=int(vector.shape[0]),
                vector=vector_to_bytes(vector),
            )
            s.add(row)
            s.flush()
            sources = _link_sources(s, row.id, source_message_ids)
            return CrystalRecord.from_orm(row, sources)

    def merge(
        self,
        crystal_id: int,
        *,
        text: str | None = None,
        vector: np.ndarray | None = None,
        importance: float | None = None,
        source_message_ids: Iterable[int] = (),
    ) -> CrystalRecord:
        """Fold a near-duplicate into an existing crystal: new text/vector if given, the new
        importance, and the union of the source messages."""
        with self._db.session() as s:
            row = _load(s, crystal_id)
            if text is not None:
                row.text = text[:MAX_TEXT]
            if vector is not None:
                row.vector = vector_to_bytes(np.asarray(vector, dtype=np.float32).ravel())
            if importance is not None:
                row.importance = clamp_importance(importance)
            row.updated_at = self._clock()
            _link_sources(s, row.id, source_message_ids)
            return record_of(s, row)

    def edit(self, crystal_id: int, text: str, vector: np.ndarray, embed_model: str,
             ) -> CrystalRecord:
        vector = np.asarray(vector, dtype=np.float32).ravel()
        with self._db.session() as s:
            row = _load(s, crystal_id)
            row.text = text[:MAX_TEXT]
            row.vector = vector_to_bytes(vector)
            row.embed_model = embed_model
            row.dim = int(vector.shape[0])
            row.updated_at = self._clock()
            return record_of(s, row)

    def set_pinned(self, crystal_id: int, pinned: bool) -> CrystalRecord:
        with self._db.session() as s:
            row = _load(s, crystal_id)
            row.pinned = pinned
            row.updated_at = self._clock()
            return record_of(s, row)

    def set_importance(self, crystal_id: int, importance: float) -> CrystalRecord:
        with self._db.session() as s:
            row = _load(s, crystal_id)
            row.importance = clamp_importance(importance)
            row.updated_at = self._clock()
            return record_of(s, row)

    def archive(self, ids: Iterable[int], *, only_stale_before: datetime | None = None,
                ) -> list[int]:
        """Move crystals to the archive (never pinned ones); returns the ids that moved.
        With `only_stale_before`, only those that have not resonated since then."""
        ids = list(ids)
        if not ids:
            return []
        now = self._clock()
        conditions = [Crystal.id.in_(ids), Crystal.archived.is_(False),
                      Crystal.pinned.is_(False)]
        if only_stale_before is not None:
            conditions.append(_last_resonated() < only_stale_before)
        with self._db.session() as s:
            moved = list(s.scalars(select(Crystal.id).where(*conditions)))
            if moved:
                s.execute(update(Crystal).where(Crystal.id.in_(moved)).values(
                    archived=True, archived_at=now, updated_at=now))
            return moved

    def restore(self, crystal_id: int) -> CrystalRecord:
        """Back from the archive. Counts as a resonance, so it is not archived again at once."""
        now = self._clock()
        with self._db.session() as s:
            row = _load(s, crystal_id)
            row.archived = False
            row.archived_at = None
            row.last_recalled_at = now
            row.updated_at = now
            return record_of(s, row)

    def delete(self, crystal_id: int) -> bool:
        """Delete a crystal with its sources and recalls. SQLite's secure_delete zeroes the
        freed bytes, so its text and vector don't linger in free pages of the file."""
        with self._db.session() as s:
            s.connection().exec_driver_sql("PRAGMA secure_delete=ON")
            s.execute(delete(CrystalRecall).where(CrystalRecall.crystal_id == crystal_id))
            s.execute(delete(CrystalSource).where(CrystalSource.crystal_id == crystal_id))
            deleted = s.execute(delete(Crystal).where(Crystal.id == crystal_id)).rowcount
        if deleted:
            self._checkpoint()
        return bool(deleted)

    def _checkpoint(self) -> None:
        # Old page images of the deleted row can still sit in the WAL file: copy the WAL back
        # and truncate it. Best effort: a reader holding a snapshot just makes it a no-op.
        try:
            conn = sqlite3.connect(self._db.path, timeout=1.0)
            try:
                conn.execute("PRAGMA secure_delete=ON")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
        except sqlite3.Error as err:
            log.info("checkpoint after forgetting skipped: %s", err)

    # -- reading -------------------------------------------------------------------------

    def get(self, crystal_id: int) -> CrystalRecord:
        with self._db.read_session() as s:
            row = _load(s, crystal_id)
            return record_of(s, row)

    def get_many(self, ids: Iterable[int], *, active_only: bool = False,
                 ) -> dict[int, tuple[CrystalRecord, np.ndarray]]:
        """Records and vectors of the given ids that exist (archived ones too unless
        `active_only`)."""
        ids = list({int(i) for i in ids})
        if not ids:
            return {}
        query = select(Crystal).where(Crystal.id.in_(ids))
        if active_only:
            query = query.where(Crystal.archived.is_(False))
        with self._db.read_session() as s:
            rows = list(s.scalars(query))
            return {r.id: (record, vector_from_bytes(r.vector, r.dim))
                    for r, record in zip(rows, records_of(s, rows), strict=True)}

    def list(self, *, archived: bool | None = False, kind: str | None = None,
             limit: int = 100, offset: int = 0) -> list[CrystalRecord]:
        """Crystals, newest first. archived=None lists both."""
        query = select(Crystal)
        if archived is not None:
            query = query.where(Crystal.archived.is_(archived))
        if kind is not None:
            query = query.where(Crystal.kind == kind)
        query = query.order_by(Crystal.id.desc()).limit(limit).offset(offset)
        with self._db.read_session() as s:
            return records_of(s, list(s.scalars(query)))

    def count(self, *, archived: bool | None = False) -> int:
        query = select(func.count()).select_from(Crystal)
        if archived is not None:
            query = query.where(Crystal.archived.is_(archived))
        with self._db.read_session() as s:
            return int(s.scalar(query) or 0)

    def search_text(self, words: str, *, archived: bool | None = True, limit: int = 50,
                    ) -> list[CrystalRecord]:
        """Crystals whose text contains every word (case-insensitive for ASCII)."""
        terms = [w for w in words.split() if w]
        if not terms:
            return []
        query = select(Crystal)
        if archived is not None:
            query = query.where(Crystal.archived.is_(archived))
        for term in terms:
            escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(or_(Crystal.text.ilike(f"%{escaped}%", escape="\\"),
                                    Crystal.source.ilike(f"%{escaped}%", escape="\\")))
        query = query.order_by(Crystal.id.desc()).limit(limit)
        with self._db.read_session() as s:
            return records_of(s, list(s.scalars(query)))

    def stale_ids(self, before: datetime) -> list[int]:
        """Active, unpinned crystals that have not resonated since `before`."""
        query = select(Crystal.id).where(
            Crystal.archived.is_(False),
            Crystal.pinned.is_(False),
            _last_resonated() < before,
        )
        with self._db.read_session() as s:
            return list(s.scalars(query))

    def crystals_from_messages(self, message_ids: Iterable[int]) -> dict[int, set[int]]:
        """crystal id -> its source message ids, for crystals made from any of these."""
        ids = list(message_ids)
        if not ids:
            return {}
        with self._db.read_session() as s:
            hit = select(CrystalSource.crystal_id).where(CrystalSource.message_id.in_(ids))
            rows = s.execute(select(CrystalSource.crystal_id, CrystalSource.message_id)
                             .where(CrystalSource.crystal_id.in_(hit)))
            out: dict[int, set[int]] = defaultdict(set)
            for cid, mid in rows:
                out[cid].add(mid)
            return dict(out)


def _last_resonated() -> Any:
    # type_: compared with an aware datetime, the bound value must be stored as UTC, as the
    # columns are (a plain DATETIME would keep the local wall time).
    return func.coalesce(Crystal.last_recalled_at, Crystal.created_at, type_=UTCDateTime())


def _load(s: Session, crystal_id: int) -> Crystal:
    row = s.get(Crystal, crystal_id)
    if row is None:
        raise NotFoundError(f"Memory {crystal_id} does not exist (it may have been forgotten).")
    return row


def _link_sources(s: Session, crystal_id: int, message_ids: Iterable[int]) -> list[int]:
    """Adds source links for messages that exist; returns all the crystal's sources."""
    wanted = {int(m) for m in message_ids}
    have = set(s.scalars(select(CrystalSource.message_id)
                         .where(CrystalSource.crystal_id == crystal_id)))
    new = wanted - have
    if new:
        existing = set(s.scalars(select(Message.id).where(Message.id.in_(list(new)))))
        s.add_all(CrystalSource(crystal_id=crystal_id, message_id=m) for m in sorted(existing))
        s.flush()
        have |= existing
    return sorted(have)


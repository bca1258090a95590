"""What a crystal is to the rest of the program: a frozen `CrystalRecord`, read from its rows.

The stores (crystals.py, recall_log.py) hand out these records, never ORM objects, so a record
stays valid after its session has closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ghostdesk.core.store.models import Crystal, CrystalSource


@dataclass(frozen=True)
class CrystalRecord:
    id: int
    kind: str
    text: str
    source: str | None
    importance: float
    pinned: bool
    archived: bool
    created_at: datetime
    updated_at: datetime
    last_recalled_at: datetime | None
    archived_at: datetime | None
    recall_count: int
    source_message_ids: tuple[int, ...]

    @property
    def last_resonated_at(self) -> datetime:
        """When it was last recalled, or made if never: what forgetting counts from."""
        return self.last_recalled_at or self.created_at

    @classmethod
    def from_orm(cls, row: Crystal, sources: Sequence[int]) -> CrystalRecord:
        return cls(
            id=row.id,
            kind=row.kind,
            text=row.text,
            source=row.source,
            importance=float(row.importance),
            pinned=bool(row.pinned),
            archived=bool(row.archived),
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_recalled_at=row.last_recalled_at,
            archived_at=row.archived_at,
            recall_count=row.recall_count,
            source_message_ids=tuple(sorted(sources)),
        )

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for key in ("created_at", "updated_at", "last_recalled_at", "archived_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        data["source_message_ids"] = list(self.source_message_ids)
        return data


@dataclass(frozen=True)
class StoredRecall:
    """A crystal recalled for a reply, as stored (`crystal_recalls`)."""

    crystal: CrystalRecord
    score: float
    rank: int


def record_of(s: Session, row: Crystal) -> CrystalRecord:
    """The record of one row, with its source messages."""
    return CrystalRecord.from_orm(row, sources_of(s, [row.id])[row.id])


def records_of(s: Session, rows: Sequence[Crystal]) -> list[CrystalRecord]:
    """The records of these rows, in their order, with their source messages (one query)."""
    sources = sources_of(s, [r.id for r in rows])
    return [CrystalRecord.from_orm(r, sources[r.id]) for r in rows]


def sources_of(s: Session, ids: Sequence[int]) -> dict[int, list[int]]:
    """crystal id -> the ids of the messages it was made from (empty for none)."""
    out: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        rows = s.execute(select(CrystalSource.crystal_id, CrystalSource.message_id)
                         .where(CrystalSource.crystal_id.in_(list(ids))))
        for cid, mid in rows:
            out[cid].append(mid)
    return out

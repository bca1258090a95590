"""One bulk read of the ledger for building training data: every conversation with feedback,
each reply's reward and the better replies the user wrote.

Everything is read in three queries into a `LedgerSnapshot`, so building 100,000 records
holds one record at a time beyond the snapshot (see `datasets`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

from ghostdesk.core.feedback.records import ACTIVE, CONFIRMED, PENDING
from ghostdesk.core.feedback.weights import RewardWeights, load_weights
from ghostdesk.core.store.db import Database


class SnapshotMessage(NamedTuple):
    id: int
    conversation_id: int
    parent_id: int | None
    role: str
    content: str
    status: str
    dropped_turns: int
    system_prompt: str | None
    """For replies: the exact system text given at chat time (persona + recalled memories);
    None for replies saved before it was recorded."""


@dataclass
class LedgerSnapshot:
    """The messages, rewards and better replies the builders need, read in bulk."""

    messages: dict[int, SnapshotMessage]
    rewards: dict[int, float]
    """Reply id -> reward, for replies with at least one counted event."""
    better_replies: dict[int, str]
    weights: RewardWeights

    def reward(self, message_id: int) -> float:
        return self.rewards.get(message_id, 0.0)


def load_snapshot(
    db: Database, *, confirmed_only: bool = False, better_replies_only: bool = False
) -> LedgerSnapshot:
    """Read every conversation that has feedback, in three queries. `better_replies_only`
    reads only the conversations with a better reply (all an SFT export of them needs)."""
    statuses = (ACTIVE, CONFIRMED) if confirmed_only else (ACTIVE, PENDING, CONFIRMED)
    marks = ", ".join("?" for _ in statuses)
    with db.read_session() as s:
        weights = load_weights(s)
        # Plain sqlite3 rows: building ORM objects or SQLAlchemy Rows for a few hundred
        # thousand messages would cost more than the queries themselves.
        s.connection()  # begins the read transaction the raw cursor then runs in
        raw = s.connection().connection.driver_connection
        assert raw is not None
        rewards: dict[int, float] = defaultdict(float)
        for mid, kind, n in raw.execute(
            f"SELECT message_id, kind, count(*) FROM feedback_events WHERE status IN ({marks}) "
            "GROUP BY message_id, kind",
            statuses,
        ):
            rewards[mid] += weights[kind] * n
        better = dict(
            raw.execute(
                "SELECT message_id, text FROM feedback_events WHERE kind = 'better_reply' "
                "AND status = 'active' AND text IS NOT NULL ORDER BY id"
            )
        )
        having = (
            "e.kind = 'better_reply' AND e.status = 'active'"
            if better_replies_only
            else f"e.status IN ({marks})"
        )
        rows = raw.execute(
            "SELECT id, conversation_id, parent_id, role, content, status, dropped_turns, "
            "json_extract(generation_settings, '$.system_prompt') "
            "FROM messages WHERE conversation_id IN (SELECT DISTINCT m.conversation_id "
            f"FROM feedback_events AS e JOIN messages AS m ON m.id = e.message_id "
            f"WHERE {having})",
            () if better_replies_only else statuses,
        )
        make = SnapshotMessage._make  # tuple.__new__ straight from the row: the fastest way in
        messages = {row[0]: make(row) for row in rows}
    return LedgerSnapshot(
        messages=messages,
        rewards={mid: round(r, 6) for mid, r in rewards.items()},
        better_replies=better,
        weights=weights,
    )

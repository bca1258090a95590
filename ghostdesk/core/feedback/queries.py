"""Reading the ledger: each reply's feedback and reward, event lists, recently rated replies and
the totals.

Every function reads in the session it is given and returns frozen records (`records`).
A reply's reward is the sum, over its events that count (active, pending, confirmed), of the
weight of their kind in the `reward_weights` table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ghostdesk.core.errors import NotFoundError
from ghostdesk.core.feedback.records import (
    ACTIVE,
    CLEARED,
    COUNTED_STATUSES,
    EXPLICIT,
    FeedbackEventRecord,
    FeedbackState,
    FeedbackSummary,
    RatedReply,
    ReplyRef,
    SignalItem,
)
from ghostdesk.core.feedback.weights import load_weights
from ghostdesk.core.store.models import Conversation, FeedbackEvent, Message

EXCERPT_CHARS = 120
_CHUNK = 500  # ids per IN (...) list


def reply_states(s: Session, ids: Sequence[int]) -> dict[int, FeedbackState]:
    """The feedback of each reply (an empty state for a reply without any), in `ids` order."""
    weights = load_weights(s)
    grouped: dict[int, list[FeedbackEventRecord]] = {mid: [] for mid in ids}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = s.scalars(
            select(FeedbackEvent).where(
                FeedbackEvent.message_id.in_(chunk), FeedbackEvent.status != CLEARED
            )
        )
        for event in rows:
            grouped[event.message_id].append(FeedbackEventRecord.from_orm(event))
    return {mid: FeedbackState.from_events(mid, grouped[mid], weights) for mid in ids}


def event_items(
    s: Session,
    *,
    message_id: int | None = None,
    statuses: Sequence[str] | None = None,
    source: str | None = None,
    limit: int | None = 100,
) -> list[SignalItem]:
    """Events, newest first, each with the reply it belongs to."""
    query = (
        select(FeedbackEvent, Message.conversation_id, Conversation.title, Message.content)
        .join(Message, Message.id == FeedbackEvent.message_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
    )
    if message_id is not None:
        query = query.where(FeedbackEvent.message_id == message_id)
    if statuses:
        query = query.where(FeedbackEvent.status.in_(statuses))
    if source is not None:
        query = query.where(FeedbackEvent.source == source)
    query = query.order_by(FeedbackEvent.id.desc()).limit(limit)
    if message_id is not None and s.get(Message, message_id) is None:
        raise NotFoundError(f"Message {message_id} does not exist.")
    return [_signal_item(row) for row in s.execute(query)]


def recent_rated(s: Session, limit: int = 20) -> list[RatedReply]:
    """Replies the user rated or wrote about, most recently first."""
    last = func.max(FeedbackEvent.updated_at).label("last")
    query = (
        select(FeedbackEvent.message_id, last)
        .where(FeedbackEvent.source == EXPLICIT, FeedbackEvent.status == ACTIVE)
        .group_by(FeedbackEvent.message_id)
        .order_by(last.desc(), FeedbackEvent.message_id.desc())
        .limit(limit)
    )
    rows = s.execute(query).all()
    ids = [mid for mid, _ in rows]
    states = reply_states(s, ids)
    refs = _reply_refs(s, ids)
    return [RatedReply(refs[mid], states[mid], at) for mid, at in rows if mid in refs]


def summary(s: Session) -> FeedbackSummary:
    """Totals over the whole ledger."""
    query = select(
        FeedbackEvent.kind, FeedbackEvent.source, FeedbackEvent.status, func.count()
    ).group_by(FeedbackEvent.kind, FeedbackEvent.source, FeedbackEvent.status)
    counted = (
        select(FeedbackEvent.message_id, FeedbackEvent.kind, func.count())
        # Explicit events are only ever "active" or "cleared", so the status says it all.
        .where(FeedbackEvent.status.in_(COUNTED_STATUSES))
        .group_by(FeedbackEvent.message_id, FeedbackEvent.kind)
    )
    explicit: dict[str, int] = {}
    signals: dict[str, dict[str, int]] = defaultdict(dict)
    weights = load_weights(s)
    for kind, source, status, n in s.execute(query):
        if source == EXPLICIT:
            if status == ACTIVE:
                explicit[kind] = explicit.get(kind, 0) + n
        else:
            signals[kind][status] = n
    rewards: dict[int, float] = defaultdict(float)
    for mid, kind, n in s.execute(counted):
        rewards[mid] += weights[kind] * n
    return FeedbackSummary(
        explicit=explicit,
        signals=dict(signals),
        rated_replies=len(rewards),
        total_reward=round(sum(rewards.values()), 6),
        weight_problems=weights.problems,
    )


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _reply_refs(s: Session, ids: Sequence[int]) -> dict[int, ReplyRef]:
    refs: dict[int, ReplyRef] = {}
    for start in range(0, len(ids), _CHUNK):
        query = (
            select(Message.id, Message.conversation_id, Conversation.title, Message.content)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id.in_(ids[start : start + _CHUNK]))
        )
        for mid, cid, title, content in s.execute(query):
            refs[mid] = ReplyRef(mid, cid, title, _excerpt(content))
    return refs


def _signal_item(row: Any) -> SignalItem:
    event, cid, title, content = row
    record = FeedbackEventRecord.from_orm(event)
    return SignalItem(record, ReplyRef(record.message_id, cid, title, _excerpt(content)))

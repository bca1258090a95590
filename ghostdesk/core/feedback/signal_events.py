"""Implicit signals in the ledger: attributing them to replies, the abandonment sweep, and the
user's confirm or dismiss.

The signals themselves are found by `message_signals` (the words of the user's next message)
and `conversation_signals` (the conversation going on, or the user leaving). Text signals and
abandonment are recorded *pending*, so the user can confirm or dismiss them; continuation
is recorded *active*. A reply holds at most one signal of each kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ghostdesk.core.errors import GhostDeskError, NotFoundError
from ghostdesk.core.feedback.conversation_signals import (
    ABANDON_TIMEOUT_S,
    abandonment_signal,
    continuation_signal,
)
from ghostdesk.core.feedback.event_rows import load_reply, set_status
from ghostdesk.core.feedback.records import (
    ACTIVE,
    EXPLICIT,
    IMPLICIT,
    PENDING,
    FeedbackEventRecord,
    ImplicitSignal,
)
from ghostdesk.core.feedback.weights import ABANDONED, CONTINUATION, SIGNAL_KINDS, load_weights
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import Conversation, FeedbackEvent, Message
from ghostdesk.core.store.records import MessageRecord

ABANDON_LOOKBACK = timedelta(days=7)
"""Replies older than this when first looked at are not judged abandoned: the conversation
ended before GhostDesk could follow it (for example, history from before feedback existed)."""

Clock = Callable[[], datetime]


def record_implicit(
    db: Database,
    clock: Clock,
    message_id: int,
    signal: ImplicitSignal,
    *,
    status: str = PENDING,
    source_message_id: int | None = None,
) -> FeedbackEventRecord | None:
    """Attribute one implicit signal to a reply. A reply holds at most one signal of each
    kind: None when it already has one (whatever its status)."""
    with db.session() as s:
        load_reply(s, message_id)
        event = _add_signal(s, message_id, signal, status, source_message_id, clock())
        if event is None:
            return None
        s.flush()
        return FeedbackEventRecord.from_orm(event)


def observe_user_message(
    db: Database,
    clock: Clock,
    message: MessageRecord,
    *,
    abandon_after_s: float = ABANDON_TIMEOUT_S,
) -> list[FeedbackEventRecord]:
    """Read what the user's new message says about the reply it answers.

    The reply gets the text signals of the message (pending), one continuation signal
    (active) and, when the message came more than `abandon_after_s` after the reply with
    nothing else happening in the chat meanwhile, an abandoned signal (pending).
    """
    if message.role != "user" or message.parent_id is None:
        return []
    # The detector (and its rule table) loads on the first message observed, not at start-up.
    from ghostdesk.core.feedback.message_signals import detect_signals

    now = clock()
    with db.session() as s:
        reply = s.get(Message, message.parent_id)
        if reply is None or reply.role != "assistant":
            return []
        weights = load_weights(s)
        signals = [
            (sig, PENDING) for sig in detect_signals(message.content) if sig.kind in SIGNAL_KINDS
        ]
        continued = continuation_signal(1, weights[CONTINUATION])
        if continued is not None:
            signals.append((continued, ACTIVE))
        activity = _last_activity(s, [reply.conversation_id], exclude_ids={message.id})
        left = abandonment_signal(
            reply.created_at,
            message.created_at,
            message.created_at,
            _activity_after(activity.get(reply.conversation_id), message.created_at),
            timeout_s=abandon_after_s,
            weight=weights[ABANDONED],
        )
        if left is not None:
            signals.append((left, PENDING))
        added = [_add_signal(s, reply.id, sig, status, message.id, now) for sig, status in signals]
        s.flush()
        return [FeedbackEventRecord.from_orm(e) for e in added if e is not None]


def evaluate_abandonment(
    db: Database,
    clock: Clock,
    *,
    abandon_after_s: float = ABANDON_TIMEOUT_S,
    now: datetime | None = None,
    activity: Mapping[int, datetime] | None = None,
    lookback: timedelta = ABANDON_LOOKBACK,
) -> list[FeedbackEventRecord]:
    """Mark the replies the user left the conversation on (pending, −0.5 by default).

    Looks at the last reply of each conversation: abandoned when it is at least
    `abandon_after_s` old and nothing happened in its chat after it (no message, no
    rating, no regeneration, and no activity the caller knows of, such as typing, given
    per conversation in `activity`). Cheap; call it at start, when a chat is opened and
    now and then.
    """
    now = now or clock()
    deadline = now - timedelta(seconds=abandon_after_s)
    has_abandoned = (
        select(FeedbackEvent.id)
        .where(FeedbackEvent.message_id == Message.id, FeedbackEvent.kind == ABANDONED)
        .exists()
    )
    query = (
        select(Message.id, Message.conversation_id, Message.created_at)
        .join(Conversation, Conversation.current_leaf_id == Message.id)
        .where(
            Message.role == "assistant",
            Message.created_at <= deadline,
            Message.created_at >= now - lookback,
            ~has_abandoned,
        )
    )
    with db.session() as s:
        candidates = s.execute(query).all()
        if not candidates:
            return []
        weights = load_weights(s)
        stored = _last_activity(s, [cid for _, cid, _ in candidates])
        added: list[FeedbackEvent] = []
        for mid, cid, created in candidates:
            last = _latest(stored.get(cid), (activity or {}).get(cid))
            signal = abandonment_signal(
                created,
                None,
                now,
                last,
                timeout_s=abandon_after_s,
                weight=weights[ABANDONED],
            )
            if signal is not None:
                event = _add_signal(s, mid, signal, PENDING, None, clock())
                if event is not None:
                    added.append(event)
        s.flush()
        return [FeedbackEventRecord.from_orm(e) for e in added]


def decide(db: Database, clock: Clock, event_id: int, status: str) -> FeedbackEventRecord:
    """The user's word on an implicit signal: CONFIRMED (also undoes a dismissal) or
    DISMISSED (it no longer counts anywhere)."""
    with db.session() as s:
        event = s.get(FeedbackEvent, event_id)
        if event is None:
            raise NotFoundError(f"Feedback event {event_id} does not exist.")
        if event.source != IMPLICIT:
            raise GhostDeskError(
                f"Feedback event {event_id} is a {event.kind} you gave yourself; only "
                "signals read from the conversation are confirmed or dismissed.",
                hint="Change a rating with: ghostdesk rate MESSAGE_ID up|down|laugh|clear",
            )
        if event.status != status:
            set_status(event, status, clock())
        s.flush()
        return FeedbackEventRecord.from_orm(event)


def _add_signal(
    s: Session,
    message_id: int,
    signal: ImplicitSignal,
    status: str,
    source_message_id: int | None,
    now: datetime,
) -> FeedbackEvent | None:
    exists = s.scalar(
        select(FeedbackEvent.id)
        .where(
            FeedbackEvent.message_id == message_id,
            FeedbackEvent.source == IMPLICIT,
            FeedbackEvent.kind == signal.kind,
        )
        .limit(1)
    )
    if exists is not None:
        return None
    detail: dict[str, Any] = {"rule_id": signal.rule_id}
    if source_message_id is not None:
        detail["from_message_id"] = source_message_id
    if signal.phrase:
        detail["span"] = [signal.start, signal.end]
    event = FeedbackEvent(
        message_id=message_id,
        kind=signal.kind,
        source=IMPLICIT,
        weight=signal.weight,
        status=status,
        phrase=signal.phrase[:200] or None,
        created_at=now,
        updated_at=now,
        detail=detail,
    )
    s.add(event)
    return event


def _last_activity(
    s: Session, conversation_ids: Sequence[int], exclude_ids: set[int] | None = None
) -> dict[int, datetime]:
    """Per conversation, the newest message or explicit feedback (a rating, a comment)."""
    latest: dict[int, datetime] = {}
    messages = select(Message.conversation_id, func.max(Message.created_at)).where(
        Message.conversation_id.in_(conversation_ids)
    )
    if exclude_ids:
        messages = messages.where(Message.id.not_in(exclude_ids))
    feedback = (
        select(Message.conversation_id, func.max(FeedbackEvent.updated_at))
        .join(Message, Message.id == FeedbackEvent.message_id)
        .where(Message.conversation_id.in_(conversation_ids), FeedbackEvent.source == EXPLICIT)
    )
    for query in (messages, feedback):
        for cid, at in s.execute(query.group_by(Message.conversation_id)):
            latest[cid] = _latest(latest.get(cid), at) or at
    return latest


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _activity_after(last: datetime | None, before: datetime) -> datetime | None:
    """Activity up to the user's new message (what came with or after it does not count)."""
    return last if last is not None and last < before else None

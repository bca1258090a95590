"""The reward ledger: every piece of feedback on the companion's replies, and their rewards.

Explicit feedback is what the user clicks or writes under a reply: 👍, 👎 and 😂, a comment,
a better version of the reply. 👍 and 👎 exclude each other; 😂 goes with either. Implicit
signals are read from the conversation (see `implicit.py`): from the words of the user's
next message (laughter, "you get me", scorn, recorded as *pending* so the user can confirm
or dismiss them), from the conversation going on (continuation, recorded as *active*) and
from the user leaving right after a reply (abandoned, pending).

Nothing is deleted: taking a rating back marks its row "cleared", dismissing a signal marks
it "dismissed". A reply's reward is the sum, over its events that count (active, pending,
confirmed), of the weight of their kind in the `reward_weights` table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ghostdesk.core.errors import GhostDeskError, NotFoundError
from ghostdesk.core.feedback.records import (
    ACTIVE,
    CLEARED,
    CONFIRMED,
    COUNTED_STATUSES,
    DISMISSED,
    EXPLICIT,
    IMPLICIT,
    PENDING,
    FeedbackEventRecord,
    FeedbackState,
    FeedbackSummary,
    RatedReply,
    ReplyRef,
    SignalItem,
)
from ghostdesk.core.feedback.weights import (
    ABANDONED,
    CONTINUATION,
    RATING_KINDS,
    SIGNAL_KINDS,
    RewardWeights,
    load_weights,
    store_weight,
)
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import Conversation, FeedbackEvent, Message, utcnow
from ghostdesk.core.store.records import MessageRecord

if TYPE_CHECKING:
    # The detector (and its rule table) loads on the first message observed, not at start-up.
    from ghostdesk.core.feedback.implicit import ImplicitSignal

RATE_ACTIONS: tuple[str, ...] = (*RATING_KINDS, "clear")
ABANDON_TIMEOUT_S = 600.0
"""The default of `implicit.ABANDON_TIMEOUT_S` (a test holds them equal)."""
ABANDON_LOOKBACK = timedelta(days=7)
"""Replies older than this when first looked at are not judged abandoned: the conversation
ended before GhostDesk could follow it (for example, history from before feedback existed)."""
TEXT_LIMIT = 20_000
"""Longest comment or better reply, in characters."""
EXCERPT_CHARS = 120
_CHUNK = 500  # ids per IN (...) list


class RewardLedger:
    """Records and reads feedback in one `Database`. Safe to share across threads: every
    call is one short transaction and returns frozen records."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    # -- weights -------------------------------------------------------------------------

    def weights(self) -> RewardWeights:
        """The weights in use; `problems` says which stored ones were unusable."""
        with self._db.read_session() as s:
            return load_weights(s)

    def set_weight(self, kind: str, value: float) -> RewardWeights:
        """Change the weight of one kind; every reward is recomputed with it from now on."""
        with self._db.session() as s:
            store_weight(s, kind, value)
            s.flush()
            return load_weights(s)

    # -- explicit feedback ---------------------------------------------------------------

    def rate(self, message_id: int, action: str, *, on: bool | None = None) -> FeedbackState:
        """Press a button under a reply: "up", "down", "laugh", or "clear" (all three off).

        `on=None` toggles the button, True turns it on, False off (both idempotent). Turning
        👍 on turns 👎 off and the other way round; 😂 is independent. Comments and better
        replies are left alone. Returns the reply's feedback afterwards.
        """
        if action not in RATE_ACTIONS:
            raise GhostDeskError(
                f"Unknown rating {action!r}.", hint=f"Use one of: {', '.join(RATE_ACTIONS)}."
            )
        now = self._clock()
        with self._db.session() as s:
            _load_reply(s, message_id)
            active = {
                e.kind: e
                for e in s.scalars(
                    select(FeedbackEvent).where(
                        FeedbackEvent.message_id == message_id,
                        FeedbackEvent.source == EXPLICIT,
                        FeedbackEvent.kind.in_(RATING_KINDS),
                        FeedbackEvent.status == ACTIVE,
                    )
                )
            }
            if action == "clear":
                for event in active.values():
                    _set_status(event, CLEARED, now)
            else:
                want = action not in active if on is None else on
                if want and action not in active:
                    weights = load_weights(s)
                    s.add(_explicit_event(message_id, action, weights[action], now))
                    opposite = {"up": "down", "down": "up"}.get(action)
                    if opposite in active:
                        _set_status(active[opposite], CLEARED, now)
                elif not want and action in active:
                    _set_status(active[action], CLEARED, now)
            s.flush()
            return _states(s, [message_id])[message_id]

    def set_comment(self, message_id: int, text: str) -> FeedbackState:
        """A short comment on a reply; an empty text removes it."""
        return self._set_text(message_id, "comment", text)

    def set_better_reply(self, message_id: int, text: str) -> FeedbackState:
        """The user's own, better version of a reply; an empty text removes it."""
        return self._set_text(message_id, "better_reply", text)

    def _set_text(self, message_id: int, kind: str, text: str) -> FeedbackState:
        text = (text or "").strip()
        if len(text) > TEXT_LIMIT:
            raise GhostDeskError(
                f"That is too long to keep as feedback ({len(text)} characters).",
                hint=f"Keep it under {TEXT_LIMIT} characters.",
            )
        now = self._clock()
        with self._db.session() as s:
            _load_reply(s, message_id)
            current = s.scalars(
                select(FeedbackEvent).where(
                    FeedbackEvent.message_id == message_id,
                    FeedbackEvent.kind == kind,
                    FeedbackEvent.status == ACTIVE,
                )
            ).all()
            if not (len(current) == 1 and current[0].text == text):
                for event in current:
                    _set_status(event, CLEARED, now)
                if text:
                    event = _explicit_event(message_id, kind, 0.0, now)
                    event.text = text
                    s.add(event)
            s.flush()
            return _states(s, [message_id])[message_id]

    # -- implicit signals ----------------------------------------------------------------

    def record_implicit(
        self,
        message_id: int,
        signal: ImplicitSignal,
        *,
        status: str = PENDING,
        source_message_id: int | None = None,
    ) -> FeedbackEventRecord | None:
        """Attribute one implicit signal to a reply. A reply holds at most one signal of each
        kind: None when it already has one (whatever its status)."""
        with self._db.session() as s:
            _load_reply(s, message_id)
            event = _add_signal(s, message_id, signal, status, source_message_id, self._clock())
            if event is None:
                return None
            s.flush()
            return FeedbackEventRecord.from_orm(event)

    def observe_user_message(
        self, message: MessageRecord, *, abandon_after_s: float = ABANDON_TIMEOUT_S
    ) -> list[FeedbackEventRecord]:
        """Read what the user's new message says about the reply it answers.

        The reply gets the text signals of the message (pending), one continuation signal
        (active) and, when the message came more than `abandon_after_s` after the reply with
        nothing else happening in the chat meanwhile, an abandoned signal (pending).
        """
        if message.role != "user" or message.parent_id is None:
            return []
        from ghostdesk.core.feedback.implicit import (
            abandonment_signal,
            continuation_signal,
            detect_signals,
        )

        now = self._clock()
        with self._db.session() as s:
            reply = s.get(Message, message.parent_id)
            if reply is None or reply.role != "assistant":
                return []
            weights = load_weights(s)
            signals = [
                (sig, PENDING)
                for sig in detect_signals(message.content)
                if sig.kind in SIGNAL_KINDS
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
            added = [
                _add_signal(s, reply.id, sig, status, message.id, now) for sig, status in signals
            ]
            s.flush()
            return [FeedbackEventRecord.from_orm(e) for e in added if e is not None]

    def evaluate_abandonment(
        self,
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
        from ghostdesk.core.feedback.implicit import abandonment_signal

        now = now or self._clock()
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
        with self._db.session() as s:
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
                    event = _add_signal(s, mid, signal, PENDING, None, self._clock())
                    if event is not None:
                        added.append(event)
            s.flush()
            return [FeedbackEventRecord.from_orm(e) for e in added]

    def confirm(self, event_id: int) -> FeedbackEventRecord:
        """The user agrees with an implicit signal (also undoes a dismissal)."""
        return self._decide(event_id, CONFIRMED)

    def dismiss(self, event_id: int) -> FeedbackEventRecord:
        """The user says an implicit signal is wrong: it no longer counts anywhere."""
        return self._decide(event_id, DISMISSED)

    def _decide(self, event_id: int, status: str) -> FeedbackEventRecord:
        with self._db.session() as s:
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
                _set_status(event, status, self._clock())
            s.flush()
            return FeedbackEventRecord.from_orm(event)

    # -- reading -------------------------------------------------------------------------

    def reward_for(self, message_id: int) -> float:
        return self.state_for([message_id])[message_id].reward

    def state_for(self, message_ids: Iterable[int]) -> dict[int, FeedbackState]:
        """The feedback of each reply, in one read (empty states for replies without any)."""
        ids = list(dict.fromkeys(message_ids))
        with self._db.read_session() as s:
            return _states(s, ids)

    def events(
        self,
        *,
        message_id: int | None = None,
        statuses: Sequence[str] | None = None,
        source: str | None = None,
        limit: int | None = 100,
    ) -> list[SignalItem]:
        """Events, newest first, each with the reply it belongs to."""
        query = _event_items_query()
        if message_id is not None:
            query = query.where(FeedbackEvent.message_id == message_id)
        if statuses:
            query = query.where(FeedbackEvent.status.in_(statuses))
        if source is not None:
            query = query.where(FeedbackEvent.source == source)
        query = query.order_by(FeedbackEvent.id.desc()).limit(limit)
        with self._db.read_session() as s:
            if message_id is not None and s.get(Message, message_id) is None:
                raise NotFoundError(f"Message {message_id} does not exist.")
            return [_signal_item(row) for row in s.execute(query)]

    def pending(self, limit: int | None = 100) -> list[SignalItem]:
        """Implicit signals waiting for the user's word, newest first."""
        return self.events(statuses=[PENDING], source=IMPLICIT, limit=limit)

    def recent_rated(self, limit: int = 20) -> list[RatedReply]:
        """Replies the user rated or wrote about, most recently first."""
        last = func.max(FeedbackEvent.updated_at).label("last")
        query = (
            select(FeedbackEvent.message_id, last)
            .where(FeedbackEvent.source == EXPLICIT, FeedbackEvent.status == ACTIVE)
            .group_by(FeedbackEvent.message_id)
            .order_by(last.desc(), FeedbackEvent.message_id.desc())
            .limit(limit)
        )
        with self._db.read_session() as s:
            rows = s.execute(query).all()
            ids = [mid for mid, _ in rows]
            states = _states(s, ids)
            refs = _reply_refs(s, ids)
        return [RatedReply(refs[mid], states[mid], at) for mid, at in rows if mid in refs]

    def summary(self) -> FeedbackSummary:
        query = select(
            FeedbackEvent.kind, FeedbackEvent.source, FeedbackEvent.status, func.count()
        ).group_by(FeedbackEvent.kind, FeedbackEvent.source, FeedbackEvent.status)
        counted = (
            select(FeedbackEvent.message_id, FeedbackEvent.kind, func.count())
            .where(_counts())
            .group_by(FeedbackEvent.message_id, FeedbackEvent.kind)
        )
        explicit: dict[str, int] = {}
        signals: dict[str, dict[str, int]] = defaultdict(dict)
        with self._db.read_session() as s:
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


# -- helpers -----------------------------------------------------------------------------


def _load_reply(s: Session, message_id: int) -> Message:
    message = s.get(Message, message_id)
    if message is None:
        raise NotFoundError(f"Message {message_id} does not exist.")
    if message.role != "assistant":
        who = "a message you wrote" if message.role == "user" else f"a {message.role} message"
        raise GhostDeskError(
            f"Message {message_id} is {who}; only the companion's replies take feedback.",
            hint="Rate the reply that follows it instead.",
        )
    return message


def _explicit_event(message_id: int, kind: str, weight: float, now: datetime) -> FeedbackEvent:
    return FeedbackEvent(
        message_id=message_id,
        kind=kind,
        source=EXPLICIT,
        weight=weight,
        status=ACTIVE,
        created_at=now,
        updated_at=now,
    )


def _set_status(event: FeedbackEvent, status: str, now: datetime) -> None:
    event.status = status
    event.updated_at = now


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


def _counts() -> Any:
    # Explicit events are only ever "active" or "cleared", so the status says it all.
    return FeedbackEvent.status.in_(COUNTED_STATUSES)


def _states(s: Session, ids: Sequence[int]) -> dict[int, FeedbackState]:
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


def _event_items_query() -> Any:
    return (
        select(FeedbackEvent, Message.conversation_id, Conversation.title, Message.content)
        .join(Message, Message.id == FeedbackEvent.message_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
    )


def _signal_item(row: Any) -> SignalItem:
    event, cid, title, content = row
    record = FeedbackEventRecord.from_orm(event)
    return SignalItem(record, ReplyRef(record.message_id, cid, title, _excerpt(content)))

"""The reward ledger: every piece of feedback on the companion's replies, and their rewards.

Explicit feedback is what the user clicks or writes under a reply: 👍, 👎 and 😂, a comment,
a better version of the reply. 👍 and 👎 exclude each other; 😂 goes with either. Implicit
signals are read from the conversation: from the words of the user's next message
(laughter, "you get me", scorn, recorded as *pending* so the user can confirm or dismiss
them), from the conversation going on (continuation, recorded as *active*) and from the
user leaving right after a reply (abandoned, pending).

Nothing is deleted: taking a rating back marks its row "cleared", dismissing a signal marks
it "dismissed". A reply's reward is the sum, over its events that count (active, pending,
confirmed), of the weight of their kind in the `reward_weights` table.

`RewardLedger` is the one object the rest of GhostDesk holds; each of its calls is one short
transaction, done by the module that owns it:

- `ratings`: the buttons, comments and better replies;
- `signal_events`: implicit signals, the abandonment sweep, confirm and dismiss;
- `queries`: each reply's feedback, event lists, recently rated replies, totals;
- `datasets`: how many training examples the feedback gives (and the datasets themselves);
- `weights`: the reward weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from ghostdesk.core.feedback import queries, ratings, signal_events
from ghostdesk.core.feedback.datasets import DatasetCounts, count_examples, load_snapshot
from ghostdesk.core.feedback.records import (
    CONFIRMED,
    DISMISSED,
    IMPLICIT,
    PENDING,
    FeedbackEventRecord,
    FeedbackState,
    FeedbackSummary,
    ImplicitSignal,
    RatedReply,
    SignalItem,
)
from ghostdesk.core.feedback.signal_events import ABANDON_LOOKBACK, ABANDON_TIMEOUT_S
from ghostdesk.core.feedback.weights import RewardWeights, load_weights, store_weight
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import utcnow
from ghostdesk.core.store.records import MessageRecord


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

    # -- explicit feedback (ratings.py) ----------------------------------------------------

    def rate(self, message_id: int, action: str, *, on: bool | None = None) -> FeedbackState:
        """Press a button under a reply: "up", "down", "laugh", or "clear" (all three off);
        `on=None` toggles, True turns on, False off. See `ratings.rate`."""
        return ratings.rate(self._db, self._clock, message_id, action, on=on)

    def set_comment(self, message_id: int, text: str) -> FeedbackState:
        """A short comment on a reply; an empty text removes it."""
        return ratings.set_text(self._db, self._clock, message_id, "comment", text)

    def set_better_reply(self, message_id: int, text: str) -> FeedbackState:
        """The user's own, better version of a reply; an empty text removes it."""
        return ratings.set_text(self._db, self._clock, message_id, "better_reply", text)

    # -- implicit signals (signal_events.py) -----------------------------------------------

    def record_implicit(
        self,
        message_id: int,
        signal: ImplicitSignal,
        *,
        status: str = PENDING,
        source_message_id: int | None = None,
    ) -> FeedbackEventRecord | None:
        """Attribute one implicit signal to a reply; None when it already has one of that kind."""
        return signal_events.record_implicit(
            self._db,
            self._clock,
            message_id,
            signal,
            status=status,
            source_message_id=source_message_id,
        )

    def observe_user_message(
        self, message: MessageRecord, *, abandon_after_s: float = ABANDON_TIMEOUT_S
    ) -> list[FeedbackEventRecord]:
        """Read what the user's new message says about the reply it answers."""
        return signal_events.observe_user_message(
            self._db, self._clock, message, abandon_after_s=abandon_after_s
        )

    def evaluate_abandonment(
        self,
        *,
        abandon_after_s: float = ABANDON_TIMEOUT_S,
        now: datetime | None = None,
        activity: Mapping[int, datetime] | None = None,
        lookback: timedelta = ABANDON_LOOKBACK,
    ) -> list[FeedbackEventRecord]:
        """Mark the replies the user left the conversation on (pending, −0.5 by default)."""
        return signal_events.evaluate_abandonment(
            self._db,
            self._clock,
            abandon_after_s=abandon_after_s,
            now=now,
            activity=activity,
            lookback=lookback,
        )

    def confirm(self, event_id: int) -> FeedbackEventRecord:
        """The user agrees with an implicit signal (also undoes a dismissal)."""
        return signal_events.decide(self._db, self._clock, event_id, CONFIRMED)

    def dismiss(self, event_id: int) -> FeedbackEventRecord:
        """The user says an implicit signal is wrong: it no longer counts anywhere."""
        return signal_events.decide(self._db, self._clock, event_id, DISMISSED)

    # -- reading (queries.py) --------------------------------------------------------------

    def reward_for(self, message_id: int) -> float:
        return self.state_for([message_id])[message_id].reward

    def state_for(self, message_ids: Iterable[int]) -> dict[int, FeedbackState]:
        """The feedback of each reply, in one read (empty states for replies without any)."""
        ids = list(dict.fromkeys(message_ids))
        with self._db.read_session() as s:
            return queries.reply_states(s, ids)

    def events(
        self,
        *,
        message_id: int | None = None,
        statuses: Sequence[str] | None = None,
        source: str | None = None,
        limit: int | None = 100,
    ) -> list[SignalItem]:
        """Events, newest first, each with the reply it belongs to."""
        with self._db.read_session() as s:
            return queries.event_items(
                s, message_id=message_id, statuses=statuses, source=source, limit=limit
            )

    def pending(self, limit: int | None = 100) -> list[SignalItem]:
        """Implicit signals waiting for the user's word, newest first."""
        return self.events(statuses=[PENDING], source=IMPLICIT, limit=limit)

    def recent_rated(self, limit: int = 20) -> list[RatedReply]:
        """Replies the user rated or wrote about, most recently first."""
        with self._db.read_session() as s:
            return queries.recent_rated(s, limit)

    def summary(self) -> FeedbackSummary:
        """Totals over the whole ledger."""
        with self._db.read_session() as s:
            return queries.summary(s)

    def example_counts(self) -> DatasetCounts:
        """How many training examples of each kind the feedback gives, for the training and
        the held-out side. Reads every conversation with feedback: not for the UI thread."""
        return count_examples(load_snapshot(self._db))

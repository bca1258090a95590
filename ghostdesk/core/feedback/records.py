"""Immutable records of feedback: snapshots of the reward ledger, safe to hand to other threads
and to the UI, and the implicit signals read from a conversation before they are recorded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ghostdesk.core.feedback.weights import RATING_KINDS, RewardWeights

EXPLICIT = "explicit"
IMPLICIT = "implicit"

ACTIVE = "active"
"""An explicit rating in force, or an implicit signal that needs no confirmation."""
CLEARED = "cleared"
"""An explicit rating the user took back (kept for the record)."""
PENDING = "pending"
"""An implicit signal the user has not looked at yet. It counts unless dismissed."""
CONFIRMED = "confirmed"
DISMISSED = "dismissed"
"""An implicit signal the user said was wrong: it never reaches a reward or a dataset."""

COUNTED_STATUSES: tuple[str, ...] = (ACTIVE, PENDING, CONFIRMED)
"""Statuses whose events count toward a reply's reward."""
SIGNAL_STATUSES: tuple[str, ...] = (ACTIVE, PENDING, CONFIRMED, DISMISSED)


@dataclass(frozen=True)
class ImplicitSignal:
    """One implicit reward signal, as a detector found it (not yet in the ledger).

    For signals read from a message, `phrase` is `text[start:end]` of the original text.
    For signals read from the conversation's course (continuation, abandoned) `phrase` is
    "" and `start == end == 0`.
    """

    kind: str
    weight: float
    phrase: str
    start: int
    end: int
    rule_id: str


@dataclass(frozen=True)
class FeedbackEventRecord:
    id: int
    message_id: int
    kind: str
    source: str
    weight: float
    status: str
    phrase: str | None
    text: str | None
    created_at: datetime
    updated_at: datetime
    detail: Mapping[str, Any] | None

    @classmethod
    def from_orm(cls, event: Any) -> FeedbackEventRecord:
        return cls(
            id=event.id,
            message_id=event.message_id,
            kind=event.kind,
            source=event.source,
            weight=event.weight,
            status=event.status,
            phrase=event.phrase,
            text=event.text,
            created_at=event.created_at,
            updated_at=event.updated_at,
            detail=dict(event.detail) if event.detail else None,
        )

    @property
    def counts(self) -> bool:
        return self.status in COUNTED_STATUSES

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["created_at"] = self.created_at.isoformat()
        data["updated_at"] = self.updated_at.isoformat()
        return data


def reward_of(events: Iterable[FeedbackEventRecord], weights: RewardWeights) -> float:
    """The reward of one reply: the sum of the weights of its events that count."""
    return round(sum(weights[e.kind] for e in events if e.counts), 6)


@dataclass(frozen=True)
class FeedbackState:
    """Everything the UI shows under one reply."""

    message_id: int
    ratings: frozenset[str] = frozenset()
    """The buttons that are on: a subset of {"up", "down", "laugh"}."""
    comment: str | None = None
    better_reply: str | None = None
    signals: tuple[FeedbackEventRecord, ...] = ()
    """Implicit signals, every status (the UI hides dismissed ones), oldest first."""
    reward: float = 0.0

    @property
    def up(self) -> bool:
        return "up" in self.ratings

    @property
    def down(self) -> bool:
        return "down" in self.ratings

    @property
    def laugh(self) -> bool:
        return "laugh" in self.ratings

    @classmethod
    def from_events(
        cls, message_id: int, events: Iterable[FeedbackEventRecord], weights: RewardWeights
    ) -> FeedbackState:
        """From a reply's events: active explicit ones and implicit ones of any status."""
        ratings: set[str] = set()
        comment = better = None
        signals: list[FeedbackEventRecord] = []
        counted: list[FeedbackEventRecord] = []
        for e in events:
            if e.source == EXPLICIT:
                if e.status != ACTIVE:
                    continue
                if e.kind in RATING_KINDS:
                    ratings.add(e.kind)
                elif e.kind == "comment":
                    comment = e.text
                elif e.kind == "better_reply":
                    better = e.text
            else:
                signals.append(e)
            counted.append(e)
        signals.sort(key=lambda e: e.id)
        return cls(
            message_id,
            frozenset(ratings),
            comment,
            better,
            tuple(signals),
            reward_of(counted, weights),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "ratings": sorted(self.ratings, key=RATING_KINDS.index),
            "comment": self.comment,
            "better_reply": self.better_reply,
            "signals": [s.to_json() for s in self.signals],
            "reward": self.reward,
        }


@dataclass(frozen=True)
class ReplyRef:
    """Where a reply lives, for lists that point at it."""

    message_id: int
    conversation_id: int
    conversation_title: str
    excerpt: str


@dataclass(frozen=True)
class SignalItem:
    """An implicit signal with the reply it is attributed to."""

    event: FeedbackEventRecord
    reply: ReplyRef

    def to_json(self) -> dict[str, Any]:
        return {
            **self.event.to_json(),
            "conversation_id": self.reply.conversation_id,
            "conversation_title": self.reply.conversation_title,
            "reply_excerpt": self.reply.excerpt,
        }


@dataclass(frozen=True)
class RatedReply:
    """A reply the user rated or wrote about, with its current feedback."""

    reply: ReplyRef
    state: FeedbackState
    last_rated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            **self.state.to_json(),
            "conversation_id": self.reply.conversation_id,
            "conversation_title": self.reply.conversation_title,
            "reply_excerpt": self.reply.excerpt,
            "last_rated_at": self.last_rated_at.isoformat(),
        }


@dataclass(frozen=True)
class FeedbackSummary:
    """Totals over the whole ledger."""

    explicit: Mapping[str, int] = field(default_factory=dict)
    """Active explicit feedback per kind (up, down, laugh, comment, better_reply)."""
    signals: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Implicit signals per kind, then per status."""
    rated_replies: int = 0
    """Replies with at least one event that counts."""
    total_reward: float = 0.0
    weight_problems: tuple[str, ...] = ()

    @property
    def pending(self) -> int:
        return sum(by_status.get(PENDING, 0) for by_status in self.signals.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "explicit": dict(self.explicit),
            "signals": {k: dict(v) for k, v in self.signals.items()},
            "pending": self.pending,
            "rated_replies": self.rated_replies,
            "total_reward": self.total_reward,
            "weight_problems": list(self.weight_problems),
        }

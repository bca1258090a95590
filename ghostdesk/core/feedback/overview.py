"""The feedback at a glance, in one read: totals, the signals waiting for an answer, recently
rated replies, and how many training examples the feedback gives (View ▸ Feedback)."""

from __future__ import annotations

from dataclasses import dataclass

from ghostdesk.core.feedback.datasets import DatasetCounts
from ghostdesk.core.feedback.ledger import RewardLedger
from ghostdesk.core.feedback.records import FeedbackSummary, RatedReply, SignalItem


@dataclass(frozen=True)
class FeedbackOverview:
    summary: FeedbackSummary
    pending: list[SignalItem]
    recent: list[RatedReply]
    counts: DatasetCounts


def load_overview(ledger: RewardLedger, recent: int = 50, pending: int = 500) -> FeedbackOverview:
    """Everything the overview shows. Counting training examples reads every conversation
    with feedback: call it off the UI thread."""
    return FeedbackOverview(
        summary=ledger.summary(),
        pending=ledger.pending(limit=pending),
        recent=ledger.recent_rated(limit=recent),
        counts=ledger.example_counts(),
    )

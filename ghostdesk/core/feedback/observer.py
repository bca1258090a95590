"""Reads implicit feedback as the conversation goes on, without ever getting in its way.

`Companion` calls a `ConversationObserver` with each user message it has saved. The observer
asks the ledger to attribute what the message says (laughter, "you get me", scorn), the
conversation going on, and a late return to the reply before it. A failure here (a full
disk, a bug) is logged and the turn goes on: feedback must never cost the user a reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ghostdesk.core.feedback.ledger import RewardLedger
from ghostdesk.core.feedback.records import FeedbackEventRecord
from ghostdesk.core.store.records import MessageRecord

log = logging.getLogger(__name__)


class ConversationObserver:
    """A `Companion(on_user_message=...)` hook that records implicit signals."""

    def __init__(self, ledger: RewardLedger, abandon_after_s: Callable[[], float]) -> None:
        self.ledger = ledger
        self._abandon_after_s = abandon_after_s
        self.last_events: list[FeedbackEventRecord] = []
        """What the latest call recorded (for tests and diagnostics)."""

    def __call__(self, message: MessageRecord) -> None:
        try:
            self.last_events = self.ledger.observe_user_message(
                message, abandon_after_s=self._abandon_after_s()
            )
        except Exception:
            self.last_events = []
            log.exception("reading feedback from message %s failed", message.id)

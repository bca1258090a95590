"""Feedback event rows: the reply a piece of feedback is written on, and status changes.

Shared by the ledger's writers (`ratings`, `signal_events`). A row is never deleted: taking
a rating back or dismissing a signal only changes its status.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ghostdesk.core.errors import GhostDeskError, NotFoundError
from ghostdesk.core.store.models import FeedbackEvent, Message


def load_reply(s: Session, message_id: int) -> Message:
    """The companion's reply `message_id`, or the error that says why it takes no feedback."""
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


def set_status(event: FeedbackEvent, status: str, now: datetime) -> None:
    event.status = status
    event.updated_at = now

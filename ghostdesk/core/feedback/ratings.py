"""Explicit feedback in the ledger: the 👍 / 👎 / 😂 buttons, a comment, a better reply.

👍 and 👎 exclude each other; 😂 goes with either. Comments and better replies carry no reward
of their own. Taking any of them back marks its row "cleared" (`event_rows`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.feedback.event_rows import load_reply, set_status
from ghostdesk.core.feedback.queries import reply_states
from ghostdesk.core.feedback.records import ACTIVE, CLEARED, EXPLICIT, FeedbackState
from ghostdesk.core.feedback.weights import RATING_KINDS, load_weights
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import FeedbackEvent

RATE_ACTIONS: tuple[str, ...] = (*RATING_KINDS, "clear")
TEXT_LIMIT = 20_000
"""Longest comment or better reply, in characters."""


def rate(
    db: Database,
    clock: Callable[[], datetime],
    message_id: int,
    action: str,
    *,
    on: bool | None = None,
) -> FeedbackState:
    """Press a button under a reply: "up", "down", "laugh", or "clear" (all three off).

    `on=None` toggles the button, True turns it on, False off (both idempotent). Turning
    👍 on turns 👎 off and the other way round; 😂 is independent. Comments and better
    replies are left alone. Returns the reply's feedback afterwards.
    """
    if action not in RATE_ACTIONS:
        raise GhostDeskError(
            f"Unknown rating {action!r}.", hint=f"Use one of: {', '.join(RATE_ACTIONS)}."
        )
    now = clock()
    with db.session() as s:
        load_reply(s, message_id)
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
                set_status(event, CLEARED, now)
        else:
            want = action not in active if on is None else on
            if want and action not in active:
                weights = load_weights(s)
                s.add(_explicit_event(message_id, action, weights[action], now))
                opposite = {"up": "down", "down": "up"}.get(action)
                if opposite in active:
                    set_status(active[opposite], CLEARED, now)
            elif not want and action in active:
                set_status(active[action], CLEARED, now)
        s.flush()
        return reply_states(s, [message_id])[message_id]


def set_text(
    db: Database, clock: Callable[[], datetime], message_id: int, kind: str, text: str
) -> FeedbackState:
    """Written feedback of `kind` ("comment" or "better_reply") on a reply; an empty text
    removes it. Setting the same text again adds nothing."""
    text = (text or "").strip()
    if len(text) > TEXT_LIMIT:
        raise GhostDeskError(
            f"That is too long to keep as feedback ({len(text)} characters).",
            hint=f"Keep it under {TEXT_LIMIT} characters.",
        )
    now = clock()
    with db.session() as s:
        load_reply(s, message_id)
        current = s.scalars(
            select(FeedbackEvent).where(
                FeedbackEvent.message_id == message_id,
                FeedbackEvent.kind == kind,
                FeedbackEvent.status == ACTIVE,
            )
        ).all()
        if not (len(current) == 1 and current[0].text == text):
            for event in current:
                set_status(event, CLEARED, now)
            if text:
                event = _explicit_event(message_id, kind, 0.0, now)
                event.text = text
                s.add(event)
        s.flush()
        return reply_states(s, [message_id])[message_id]


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

"""Reads implicit feedback from the conversation's course: the user going on, or leaving.

`continuation_signal()` rewards each further turn of a conversation after a reply;
`abandonment_signal()` marks a reply the user left the conversation on. Both are pure
functions of times and counts: the ledger (`signal_events`) decides when to ask them.
"""

from __future__ import annotations

from datetime import datetime

from ghostdesk.core.feedback.records import ImplicitSignal
from ghostdesk.core.feedback.weights import ABANDONED, CONTINUATION, SIGNAL_WEIGHTS

ABANDON_TIMEOUT_S = 600.0
"""No user message and no activity in the chat this long after a reply: the reply was abandoned."""

CONVERSATION_RULE_IDS = {
    CONTINUATION: "conversation.continuation",
    ABANDONED: "conversation.abandoned",
}


def continuation_signal(
    turn_index_after_reply: int,
    weight: float = SIGNAL_WEIGHTS[CONTINUATION],
    *,
    max_turns: int | None = None,
) -> ImplicitSignal | None:
    """The reward for the user's `turn_index_after_reply`-th message after a reply.

    1 is the user's first message after the reply, 2 the next one, and so on: each further
    turn of a continuing conversation earns `weight` once. 0 or less (no further turn yet)
    gives None, and so do turns after `max_turns` when a cap is given.
    """
    if turn_index_after_reply < 1:
        return None
    if max_turns is not None and turn_index_after_reply > max_turns:
        return None
    return ImplicitSignal(CONTINUATION, weight, "", 0, 0, CONVERSATION_RULE_IDS[CONTINUATION])


Instant = datetime | float


def _seconds(moment: Instant) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def abandonment_signal(
    reply_time: Instant,
    next_user_time: Instant | None,
    now: Instant,
    last_activity_in_chat: Instant | None,
    timeout_s: float = ABANDON_TIMEOUT_S,
    weight: float = SIGNAL_WEIGHTS[ABANDONED],
) -> ImplicitSignal | None:
    """The penalty for a reply the user left the conversation on, or None.

    A reply is abandoned when `timeout_s` has passed since `reply_time` (by the caller's
    clock, `now`), the user wrote nothing within `timeout_s` after it (`next_user_time`: the
    user's next message in this chat, None when there is none) and there was no other
    activity in the chat after it (`last_activity_in_chat`: the latest rating, regeneration,
    edit or typing in this chat, None when there is none). Before the timeout it is too early
    to tell: None. Times are datetimes or epoch seconds, all of one sort.
    """
    reply = _seconds(reply_time)
    deadline = reply + timeout_s
    if _seconds(now) < deadline:
        return None
    if next_user_time is not None:
        answered = _seconds(next_user_time)
        if reply <= answered <= deadline:
            return None
    if last_activity_in_chat is not None and _seconds(last_activity_in_chat) > reply:
        return None
    return ImplicitSignal(ABANDONED, weight, "", 0, 0, CONVERSATION_RULE_IDS[ABANDONED])

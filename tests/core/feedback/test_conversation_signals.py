"""Implicit signals from the conversation's course: continuing it, and leaving after a reply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ghostdesk.core.feedback.conversation_signals import (
    ABANDON_TIMEOUT_S,
    abandonment_signal,
    continuation_signal,
)
from ghostdesk.core.feedback.records import ImplicitSignal
from ghostdesk.core.feedback.weights import ABANDONED, CONTINUATION

T0 = 1_700_000_000.0


def test_continuation_rewards_each_further_turn():
    assert continuation_signal(0) is None
    first = continuation_signal(1)
    assert first == ImplicitSignal(CONTINUATION, 0.1, "", 0, 0, "conversation.continuation")
    assert continuation_signal(7).weight == 0.1
    assert continuation_signal(2, weight=0.25).weight == 0.25
    assert continuation_signal(3, max_turns=2) is None
    total = sum(s.weight for k in range(1, 6) if (s := continuation_signal(k)))
    assert total == pytest.approx(0.5)


def test_not_abandoned_before_the_timeout():
    now = T0 + ABANDON_TIMEOUT_S - 1
    assert abandonment_signal(T0, None, now, None) is None


def test_abandoned_after_the_timeout_without_reply_or_activity():
    signal = abandonment_signal(T0, None, T0 + ABANDON_TIMEOUT_S, None)
    assert signal == ImplicitSignal(ABANDONED, -0.5, "", 0, 0, "conversation.abandoned")


def test_not_abandoned_when_the_user_replied_in_time():
    assert abandonment_signal(T0, T0 + 30, T0 + 3600, None) is None
    assert abandonment_signal(T0, T0 + ABANDON_TIMEOUT_S, T0 + 3600, None) is None


def test_abandoned_when_the_user_only_came_back_after_the_timeout():
    assert abandonment_signal(T0, T0 + ABANDON_TIMEOUT_S + 1, T0 + 3600, None) is not None


def test_not_abandoned_when_there_was_other_activity_in_the_chat():
    assert abandonment_signal(T0, None, T0 + 3600, last_activity_in_chat=T0 + 5) is None
    # activity before the reply does not count
    assert abandonment_signal(T0, None, T0 + 3600, last_activity_in_chat=T0 - 5) is not None


def test_abandonment_timeout_and_weight_are_settable_and_datetimes_work():
    reply = datetime(2025, 5, 1, 21, 0, tzinfo=UTC)
    later = reply + timedelta(seconds=120)
    assert abandonment_signal(reply, None, later, None, timeout_s=60, weight=-0.2).weight == -0.2
    assert abandonment_signal(reply, None, later, None, timeout_s=300) is None


def test_a_controllable_clock_walks_a_reply_into_abandonment():
    clock = T0
    states = []
    for _ in range(4):
        states.append(abandonment_signal(T0, None, clock, None, timeout_s=90))
        clock += 45
    assert [s is not None for s in states] == [False, False, True, True]

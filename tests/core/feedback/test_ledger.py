"""The reward ledger: the button rules, text feedback, implicit signals, rewards, persistence."""

from __future__ import annotations

import sqlite3

import pytest

from ghostdesk.core.errors import GhostDeskError, NotFoundError
from ghostdesk.core.feedback import conversation_signals
from ghostdesk.core.feedback.ledger import ABANDON_TIMEOUT_S, RewardLedger
from ghostdesk.core.feedback.records import CONFIRMED, DISMISSED, PENDING
from ghostdesk.core.store.db import Database


def _ratings(ledger: RewardLedger, mid: int) -> set[str]:
    return set(ledger.state_for([mid])[mid].ratings)


# -- buttons -------------------------------------------------------------------------------


def test_up_and_down_exclude_each_other_and_laugh_goes_with_either(ledger, reply):
    assert ledger.rate(reply, "up").ratings == {"up"}
    assert ledger.rate(reply, "laugh").ratings == {"up", "laugh"}
    assert ledger.rate(reply, "down").ratings == {"down", "laugh"}
    assert ledger.rate(reply, "up").ratings == {"up", "laugh"}
    assert ledger.reward_for(reply) == 2.0


def test_a_second_press_takes_the_rating_back(ledger, reply):
    ledger.rate(reply, "up")
    state = ledger.rate(reply, "up")
    assert state.ratings == frozenset() and state.reward == 0.0
    ledger.rate(reply, "laugh")
    assert ledger.rate(reply, "laugh").ratings == frozenset()


def test_explicit_on_and_off_are_idempotent(ledger, reply):
    ledger.rate(reply, "up", on=True)
    assert ledger.rate(reply, "up", on=True).ratings == {"up"}
    assert ledger.rate(reply, "down", on=False).ratings == {"up"}
    assert ledger.rate(reply, "up", on=False).ratings == frozenset()
    assert ledger.rate(reply, "up", on=False).ratings == frozenset()


def test_clear_turns_every_button_off_and_keeps_written_feedback(ledger, reply):
    ledger.rate(reply, "down")
    ledger.rate(reply, "laugh")
    ledger.set_comment(reply, "too long")
    state = ledger.rate(reply, "clear")
    assert state.ratings == frozenset()
    assert state.comment == "too long"


def test_nothing_is_deleted_taking_a_rating_back_keeps_its_row(ledger, reply, db):
    ledger.rate(reply, "up")
    ledger.rate(reply, "down")
    ledger.rate(reply, "down")
    rows = _raw(db, "SELECT kind, status FROM feedback_events ORDER BY id")
    assert rows == [("up", "cleared"), ("down", "cleared")]
    assert [e.event.kind for e in ledger.events(message_id=reply)] == ["down", "up"]


def test_ratings_survive_closing_and_reopening_the_database(paths, clock, store, ledger, reply, db):
    ledger.rate(reply, "up")
    ledger.rate(reply, "laugh")
    ledger.set_better_reply(reply, "Hi! Good to see you.")
    db.close()
    with Database.open(paths.database, paths.backups) as reopened:
        state = RewardLedger(reopened).state_for([reply])[reply]
    assert state.ratings == {"up", "laugh"}
    assert state.better_reply == "Hi! Good to see you."
    assert state.reward == 2.0


def test_each_version_of_a_reply_has_its_own_feedback(ledger, store):
    cid = store.create_conversation().id
    user = store.add_message(cid, "user", "tell me a joke")
    first = store.add_message(cid, "assistant", "knock knock").id
    second = store.add_message(cid, "assistant", "a pun", parent_id=user.id).id
    ledger.rate(first, "down")
    ledger.rate(second, "up")
    ledger.rate(second, "laugh")
    states = ledger.state_for([first, second])
    assert states[first].ratings == {"down"} and states[first].reward == -1.0
    assert states[second].ratings == {"up", "laugh"} and states[second].reward == 2.0


def test_state_for_many_replies_at_once_includes_unrated_ones(ledger, store):
    cid = store.create_conversation().id
    ids = []
    for n in range(3):
        store.add_message(cid, "user", f"q{n}")
        ids.append(store.add_message(cid, "assistant", f"a{n}").id)
    ledger.rate(ids[1], "up")
    states = ledger.state_for(ids)
    assert list(states) == ids
    assert [s.ratings for s in states.values()] == [frozenset(), {"up"}, frozenset()]


# -- bad input -----------------------------------------------------------------------------


def test_rating_an_unknown_message_says_so_and_writes_nothing(ledger, db):
    with pytest.raises(NotFoundError, match="Message 999 does not exist"):
        ledger.rate(999, "up")
    assert _raw(db, "SELECT count(*) FROM feedback_events") == [(0,)]


def test_rating_a_user_message_is_refused(ledger, store, db):
    cid = store.create_conversation().id
    user = store.add_message(cid, "user", "my own words")
    with pytest.raises(GhostDeskError, match="a message you wrote") as caught:
        ledger.rate(user.id, "up")
    assert caught.value.hint and "reply" in caught.value.hint
    with pytest.raises(GhostDeskError, match="a message you wrote"):
        ledger.set_comment(user.id, "hm")
    assert _raw(db, "SELECT count(*) FROM feedback_events") == [(0,)]


def test_an_unknown_rating_is_refused(ledger, reply):
    with pytest.raises(GhostDeskError, match="Unknown rating 'meh'"):
        ledger.rate(reply, "meh")


def test_only_implicit_signals_are_confirmed_or_dismissed(ledger, reply):
    ledger.rate(reply, "up")
    [item] = ledger.events(message_id=reply)
    with pytest.raises(GhostDeskError, match="you gave yourself"):
        ledger.dismiss(item.event.id)
    with pytest.raises(NotFoundError, match="Feedback event 4242"):
        ledger.confirm(4242)
    assert ledger.state_for([reply])[reply].ratings == {"up"}


# -- written feedback ------------------------------------------------------------------------


def test_comment_and_better_reply_are_replaced_and_removed(ledger, reply, db):
    assert ledger.set_comment(reply, "  sweet  ").comment == "sweet"
    assert ledger.set_comment(reply, "sweet, but long").comment == "sweet, but long"
    state = ledger.set_better_reply(reply, "Hey you!")
    assert (state.comment, state.better_reply) == ("sweet, but long", "Hey you!")
    assert state.reward == 0.0  # written feedback carries no reward of its own
    assert ledger.set_comment(reply, "").comment is None
    # Setting the same text again adds nothing.
    ledger.set_better_reply(reply, "Hey you!")
    rows = _raw(db, "SELECT kind, status, text FROM feedback_events ORDER BY id")
    assert rows == [
        ("comment", "cleared", "sweet"),
        ("comment", "cleared", "sweet, but long"),
        ("better_reply", "active", "Hey you!"),
    ]


def test_an_overlong_comment_is_refused(ledger, reply):
    with pytest.raises(GhostDeskError, match="too long"):
        ledger.set_comment(reply, "x" * 20_001)


# -- implicit signals --------------------------------------------------------------------------


def test_the_next_message_gives_the_reply_its_signals(ledger, store, reply):
    conversation = store.get_message(reply).conversation_id
    message = store.add_message(conversation, "user", "hahaha you get me")
    events = ledger.observe_user_message(message)
    assert [(e.kind, e.status, e.phrase) for e in events] == [
        ("laughter", PENDING, "hahaha"),
        ("understood", PENDING, "you get me"),
        ("continuation", "active", None),
    ]
    assert events[0].detail == {
        "rule_id": "en.laughter.haha",
        "from_message_id": message.id,
        "span": [0, 6],
    }
    state = ledger.state_for([reply])[reply]
    assert [s.kind for s in state.signals] == ["laughter", "understood", "continuation"]
    assert state.reward == pytest.approx(3.1)


def test_a_reply_holds_one_signal_of_each_kind(ledger, store, reply):
    conversation = store.get_message(reply).conversation_id
    first = store.add_message(conversation, "user", "lol")
    assert len(ledger.observe_user_message(first)) == 2
    # An edited version of the same message: the reply already has both kinds.
    second = store.add_message(conversation, "user", "haha", parent_id=reply)
    assert ledger.observe_user_message(second) == []


def test_messages_that_follow_no_reply_give_nothing(ledger, store):
    cid = store.create_conversation().id
    first = store.add_message(cid, "user", "haha")
    assert ledger.observe_user_message(first) == []


def test_dismissed_signals_do_not_count_and_can_be_restored(ledger, store, reply):
    conversation = store.get_message(reply).conversation_id
    message = store.add_message(conversation, "user", "you zombie")
    scorn = next(e for e in ledger.observe_user_message(message) if e.kind == "scorn")
    assert ledger.reward_for(reply) == pytest.approx(-0.9)
    assert ledger.dismiss(scorn.id).status == DISMISSED
    assert ledger.reward_for(reply) == pytest.approx(0.1)
    assert [s.event.id for s in ledger.pending()] == []
    assert ledger.confirm(scorn.id).status == CONFIRMED
    assert ledger.reward_for(reply) == pytest.approx(-0.9)


def test_pending_lists_signals_with_their_reply(ledger, store, reply):
    conversation = store.get_message(reply).conversation_id
    ledger.observe_user_message(store.add_message(conversation, "user", "haha"))
    [item] = ledger.pending()
    assert (item.event.kind, item.reply.message_id, item.reply.excerpt) == (
        "laughter",
        reply,
        "hi there",
    )
    assert item.reply.conversation_title == "hello"


def test_a_reply_left_alone_is_abandoned_after_the_timeout(ledger, store, clock, reply):
    assert ledger.evaluate_abandonment(abandon_after_s=600) == []
    clock.advance(minutes=5)
    assert ledger.evaluate_abandonment(abandon_after_s=600) == []
    clock.advance(minutes=6)
    [event] = ledger.evaluate_abandonment(abandon_after_s=600)
    assert (event.message_id, event.kind, event.status, event.weight) == (
        reply,
        "abandoned",
        PENDING,
        -0.5,
    )
    assert ledger.evaluate_abandonment(abandon_after_s=600) == []  # once only
    assert ledger.reward_for(reply) == -0.5


def test_activity_after_the_reply_means_it_was_not_abandoned(ledger, store, clock, reply):
    clock.advance(minutes=2)
    ledger.rate(reply, "laugh")
    clock.advance(minutes=20)
    assert ledger.evaluate_abandonment(abandon_after_s=600) == []


def test_typing_the_caller_reports_is_activity(ledger, store, clock, reply):
    conversation = store.get_message(reply).conversation_id
    clock.advance(minutes=3)
    typed = clock.now
    clock.advance(minutes=20)
    activity = {conversation: typed}
    assert ledger.evaluate_abandonment(abandon_after_s=600, activity=activity) == []
    assert len(ledger.evaluate_abandonment(abandon_after_s=600)) == 1


def test_the_timeout_is_configurable(ledger, clock, reply):
    clock.advance(minutes=3)
    assert ledger.evaluate_abandonment(abandon_after_s=600) == []
    assert len(ledger.evaluate_abandonment(abandon_after_s=120)) == 1


def test_old_history_is_not_judged(ledger, clock, reply):
    clock.advance(days=30)
    assert ledger.evaluate_abandonment(abandon_after_s=600) == []


def test_a_late_answer_both_continues_and_abandons(ledger, store, clock, reply):
    conversation = store.get_message(reply).conversation_id
    clock.advance(hours=2)
    message = store.add_message(conversation, "user", "back again")
    kinds = [e.kind for e in ledger.observe_user_message(message, abandon_after_s=600)]
    assert kinds == ["continuation", "abandoned"]
    quick = store.add_message(conversation, "assistant", "welcome back")
    answer = store.add_message(conversation, "user", "thanks")
    assert quick.id == answer.parent_id
    assert [e.kind for e in ledger.observe_user_message(answer)] == ["continuation"]


# -- weights and totals --------------------------------------------------------------------------


def test_rewards_follow_the_weights_table(ledger, reply):
    ledger.rate(reply, "up")
    ledger.rate(reply, "laugh")
    ledger.set_weight("laugh", 0.5)
    assert ledger.reward_for(reply) == 1.5


def test_summary_and_recent_rated(ledger, store, reply):
    cid = store.get_message(reply).conversation_id
    ledger.rate(reply, "up")
    ledger.set_comment(reply, "nice")
    message = store.add_message(cid, "user", "haha")
    ledger.observe_user_message(message)
    other = store.add_message(cid, "assistant", "glad you liked it").id
    ledger.rate(other, "down")
    summary = ledger.summary()
    assert summary.explicit == {"up": 1, "comment": 1, "down": 1}
    assert summary.signals == {"laughter": {"pending": 1}, "continuation": {"active": 1}}
    assert summary.pending == 1
    assert summary.rated_replies == 2
    assert summary.total_reward == pytest.approx(1 + 1 + 0.1 - 1)
    recent = ledger.recent_rated()
    assert [r.reply.message_id for r in recent] == [other, reply]
    assert recent[1].state.comment == "nice"


def test_the_defaults_agree_with_the_detector():
    from ghostdesk.core.feedback.signal_rules import DEFAULT_WEIGHTS
    from ghostdesk.core.feedback.weights import SIGNAL_WEIGHTS

    assert SIGNAL_WEIGHTS == DEFAULT_WEIGHTS
    assert conversation_signals.ABANDON_TIMEOUT_S == ABANDON_TIMEOUT_S


def _raw(db: Database, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db.path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()

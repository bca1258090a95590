"""Implicit signals read during real turns through the Companion, and never in their way."""

from __future__ import annotations

import logging

import pytest

from ghostdesk.core.companion import ReplySaved
from ghostdesk.core.errors import StorageError
from ghostdesk.services import build_services
from tests.fakes import ScriptedEngine


@pytest.fixture
def services(ghostdesk_home):
    services = build_services()
    yield services
    services.close()


def _reply(events) -> int:
    return next(e for e in events if isinstance(e, ReplySaved)).message.id


def test_the_next_message_is_read_for_signals_on_the_reply_before(services):
    engine = ScriptedEngine()
    engine.enqueue("Why did the GPU cross the road?", "To get more bandwidth.")
    companion = services.make_companion(engine)
    cid = services.store.create_conversation().id
    first = _reply(companion.send(cid, "tell me a joke"))
    second = _reply(companion.send(cid, "hahaha you get me"))
    states = services.ledger.state_for([first, second])
    signals = [(s.kind, s.status, s.phrase) for s in states[first].signals]
    assert signals == [
        ("laughter", "pending", "hahaha"),
        ("understood", "pending", "you get me"),
        ("continuation", "active", None),
    ]
    assert states[second].signals == ()
    assert [i.event.kind for i in services.ledger.pending()] == ["understood", "laughter"]


def test_a_failing_ledger_never_costs_the_reply(services, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise StorageError("The disk is full, so GhostDesk could not save.")

    engine = ScriptedEngine()
    engine.enqueue("one", "two")
    companion = services.make_companion(engine)
    cid = services.store.create_conversation().id
    companion_events = list(companion.send(cid, "hi"))
    monkeypatch.setattr(services.ledger, "observe_user_message", broken)
    with caplog.at_level(logging.ERROR):
        events = list(companion.send(cid, "haha"))
    assert isinstance(events[-1], ReplySaved) and events[-1].message.content == "two"
    assert "reading feedback from message" in caplog.text
    assert companion_events


def test_the_abandon_timeout_comes_from_the_settings(services):
    services.settings.feedback.abandon_after_minutes = 2
    assert services.abandon_after_s() == 120.0


def test_a_bad_abandon_timeout_falls_back_to_the_default():
    from ghostdesk.core.settings import settings_from_dict

    settings, problems = settings_from_dict({"feedback": {"abandon_after_minutes": 0}})
    assert settings.feedback.abandon_after_minutes == 10.0
    assert any("feedback.abandon_after_minutes" in p for p in problems)
    settings, problems = settings_from_dict({"feedback": {"abandon_after_minutes": 30}})
    assert (settings.feedback.abandon_after_minutes, problems) == (30.0, [])

"""One turn through the Companion with a scripted model and a real SQLite store."""

import pytest

from ghostdesk.core.companion import ReplySaved, ReplyStarted, TokenReceived, UserMessageSaved
from ghostdesk.core.errors import GhostDeskError
from ghostdesk.services import build_services
from tests.fakes import ScriptedEngine


@pytest.fixture
def services():
    services = build_services()
    yield services
    services.close()


@pytest.fixture
def engine():
    return ScriptedEngine()


@pytest.fixture
def companion(services, engine):
    return services.make_companion(engine)


def test_a_turn_is_streamed_and_both_messages_are_saved(services, engine, companion):
    conv = services.store.create_conversation()
    engine.enqueue(["Hello", " there", "!"])
    events = list(companion.send(conv.id, "  hi ghost  "))
    kinds = [type(e) for e in events]
    assert kinds == [UserMessageSaved, ReplyStarted, TokenReceived, TokenReceived,
                     TokenReceived, ReplySaved]
    saved = events[-1].message
    assert saved.content == "Hello there!" and saved.status == "complete"
    assert saved.model_name == "scripted"
    assert saved.completion_tokens == 3
    assert saved.generation_settings["sampling"]["temperature"] == 0.8
    thread = services.store.thread(conv.id)
    assert [(m.role, m.content) for m in thread] == [("user", "hi ghost"),
                                                     ("assistant", "Hello there!")]
    # The persona's system prompt leads the prompt the model saw.
    assert engine.prompts[0].text.startswith("<system>You are Ghost")


def test_the_user_message_is_on_disk_before_the_first_token(services, engine, companion):
    conv = services.store.create_conversation()
    engine.enqueue(["a", "b"])
    events = companion.send(conv.id, "remember me")
    first = next(events)
    assert isinstance(first, UserMessageSaved)
    assert services.store.get_message(first.message.id).content == "remember me"
    list(events)


def test_stop_keeps_the_partial_reply_marked_stopped(services, engine, companion):
    conv = services.store.create_conversation()
    engine.enqueue(["one ", "two ", "three ", "four"])
    received = []

    def should_stop():
        return len(received) >= 2

    for event in companion.send(conv.id, "count", should_stop):
        if isinstance(event, TokenReceived):
            received.append(event.text)
    reply = services.store.thread(conv.id)[-1]
    assert reply.content == "one two"
    assert reply.status == "stopped"


def test_a_reply_abandoned_mid_stream_is_still_saved(services, engine, companion):
    conv = services.store.create_conversation()
    engine.enqueue(["partial ", "reply ", "never finished"])
    events = companion.send(conv.id, "go")
    for event in events:
        if isinstance(event, TokenReceived) and event.text == "reply ":
            break
    events.close()
    reply = services.store.thread(conv.id)[-1]
    assert (reply.role, reply.content, reply.status) == ("assistant", "partial reply", "stopped")


def test_regenerate_keeps_every_version(services, engine, companion):
    conv = services.store.create_conversation()
    engine.enqueue("first answer", "second answer")
    list(companion.send(conv.id, "question"))
    events = list(companion.regenerate(conv.id))
    newest = events[-1].message
    assert newest.content == "second answer"
    assert (newest.version_index, newest.version_count) == (2, 2)
    versions = services.store.versions(newest.id)
    assert [v.content for v in versions] == ["first answer", "second answer"]
    # Both versions answered the same prompt.
    assert engine.prompts[0].text == engine.prompts[1].text


def test_regenerate_answers_a_user_message_left_without_reply(services, engine, companion):
    conv = services.store.create_conversation()
    services.store.add_message(conv.id, "user", "anyone there?")
    engine.enqueue("yes")
    events = list(companion.regenerate(conv.id))
    assert events[-1].message.content == "yes"


def test_empty_message_and_empty_chat_are_clear_errors(services, companion):
    conv = services.store.create_conversation()
    with pytest.raises(GhostDeskError, match="empty"):
        list(companion.send(conv.id, "   "))
    with pytest.raises(GhostDeskError, match="no message"):
        list(companion.regenerate(conv.id))
    assert services.store.thread(conv.id) == []


def test_a_conversation_longer_than_the_context_keeps_working(services):
    engine = ScriptedEngine(n_ctx=300)
    companion = services.make_companion(engine)
    services.settings.sampling.max_tokens = 50
    conv = services.store.create_conversation()
    for i in range(30):
        engine.enqueue(f"reply {i} " + "blah " * 10)
        events = list(companion.send(conv.id, f"message {i} " + "words " * 10))
    started = next(e for e in events if isinstance(e, ReplyStarted))
    assert started.dropped_messages > 0
    reply = next(e for e in events if isinstance(e, ReplySaved)).message
    assert reply.dropped_turns == started.dropped_messages
    assert engine.count_tokens(engine.prompts[-1].text) <= 300 - 50
    assert "message 29" in engine.prompts[-1].text and "message 0 " not in engine.prompts[-1].text
    assert len(services.store.thread(conv.id)) == 60, "nothing is deleted from history"

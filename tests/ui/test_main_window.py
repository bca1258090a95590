"""The main window driven like a user would: loading, sending, stopping, versions, chats."""

from __future__ import annotations

import json
import threading
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from ghostdesk.core.errors import ModelFileError
from ghostdesk.services import build_services
from ghostdesk.ui.status import ModelState
from tests.fakes import ScriptedEngine
from tests.ui.conftest import StepGate


def _type_and_send(qtbot, window, text: str) -> None:
    window.composer.edit.setFocus()
    qtbot.keyClicks(window.composer.edit, text)
    qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)


def _texts(window) -> list[tuple[str, str]]:
    return [(b.role, b.text()) for b in window.chat_view.bubbles()]


def _last_text(window) -> str | None:
    bubbles = window.chat_view.bubbles()
    return bubbles[-1].text() if bubbles else None


def test_window_shows_before_the_model_is_loaded(make_window, qtbot, engine):
    released = threading.Event()

    def slow_loader():
        released.wait(5)
        return engine

    started = time.perf_counter()
    window = make_window(slow_loader)
    window.load_model()
    assert time.perf_counter() - started < 2.0
    assert window.isVisible()
    assert window.model_state == ModelState.LOADING
    assert window.status.state_label.text() == "Loading model…"
    qtbot.keyClicks(window.composer.edit, "hello")
    assert not window.send_button.isEnabled()
    assert "loading" in window.send_button.toolTip()

    with qtbot.waitSignal(window.model_ready, timeout=3000):
        released.set()
    assert window.model_state == ModelState.READY
    assert window.status.state_label.text() == "Ready"
    assert window.status.model_label.text() == "scripted"
    assert "CPU" in window.status.device_label.text()
    assert window.send_button.isEnabled()


def test_send_streams_the_reply_and_saves_it(window, qtbot, engine, services):
    gate = StepGate()
    engine.gate = gate
    engine.enqueue(["Hel", "lo ", "there"])
    _type_and_send(qtbot, window, "Hi, ghost")

    qtbot.waitUntil(lambda: len(window.chat_view.bubbles()) == 2)
    assert _texts(window)[0] == ("user", "Hi, ghost")
    assert window.send_button.text() == "Stop"
    assert window.composer.text() == ""

    gate.step()
    qtbot.waitUntil(lambda: _last_text(window) == "Hel")
    assert window.chat_view.streaming_bubble is window.chat_view.bubbles()[-1]

    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        gate.set()
    assert _texts(window) == [("user", "Hi, ghost"), ("assistant", "Hello there")]
    assert window.send_button.text() == "Send"

    cid = window.current_conversation_id
    thread = services.store.thread(cid)
    assert [(m.role, m.content, m.status) for m in thread] == [
        ("user", "Hi, ghost", "complete"),
        ("assistant", "Hello there", "complete"),
    ]
    assert window.chat_list.titles() == ["Hi, ghost"]
    assert "Last reply: 3 tokens" in window.status.speed_label.text()


def test_stop_keeps_the_partial_reply(window, qtbot, engine, services):
    gate = StepGate()
    engine.gate = gate
    engine.enqueue(["One ", "two ", "three ", "four"])
    _type_and_send(qtbot, window, "Count for me")
    gate.step(2)
    qtbot.waitUntil(lambda: _last_text(window) == "One two ")

    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)  # Stop
        gate.step()  # the engine checks should_stop before its next piece

    reply = services.store.thread(window.current_conversation_id)[-1]
    assert (reply.role, reply.content, reply.status) == ("assistant", "One two", "stopped")
    bubble = window.chat_view.bubbles()[-1]
    assert bubble.text() == "One two"
    assert bubble.is_stopped
    assert bubble.stopped_marker.text() == "stopped"


def test_regenerate_and_browse_versions(window, qtbot, engine, services):
    engine.enqueue("First answer", "Second answer")
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        _type_and_send(qtbot, window, "Tell me something")

    last = window.chat_view.last_reply()
    assert last.regenerate_button.isVisible()
    assert not last.version_label.isVisible()  # one version: no browser
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        qtbot.mouseClick(last.regenerate_button, Qt.MouseButton.LeftButton)

    cid = window.current_conversation_id
    reply = services.store.thread(cid)[-1]
    assert [v.content for v in services.store.versions(reply.id)] == [
        "First answer",
        "Second answer",
    ]
    assert _texts(window) == [("user", "Tell me something"), ("assistant", "Second answer")]
    last = window.chat_view.last_reply()
    assert last.version_label.isVisible()
    assert last.version_label.text() == "2/2"
    assert not last.next_version_button.isEnabled()

    qtbot.mouseClick(last.previous_version_button, Qt.MouseButton.LeftButton)
    last = window.chat_view.last_reply()
    assert last.text() == "First answer"
    assert last.version_label.text() == "1/2"
    assert services.store.thread(cid)[-1].content == "First answer"
    qtbot.mouseClick(last.next_version_button, Qt.MouseButton.LeftButton)
    assert window.chat_view.last_reply().text() == "Second answer"


def test_only_the_last_reply_has_regenerate(window, qtbot, engine):
    engine.enqueue("a", "b")
    for text in ("one", "two"):
        with qtbot.waitSignal(window.turn_finished, timeout=3000):
            _type_and_send(qtbot, window, text)
    replies = [b for b in window.chat_view.bubbles() if b.role == "assistant"]
    assert [b.regenerate_button.isVisible() for b in replies] == [False, True]
    assert all(b.copy_button.isVisible() for b in replies)


def test_copy_button_puts_the_reply_on_the_clipboard(window, qtbot, engine, qapp):
    engine.enqueue("Some **markdown** text")
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        _type_and_send(qtbot, window, "hi")
    qtbot.mouseClick(window.chat_view.last_reply().copy_button, Qt.MouseButton.LeftButton)
    assert qapp.clipboard().text() == "Some **markdown** text"


def _seed(services, title: str, *pairs: tuple[str, str]) -> int:
    conv = services.store.create_conversation(title, persona_name="Ghost")
    for user, reply in pairs:
        services.store.add_message(conv.id, "user", user)
        services.store.add_message(conv.id, "assistant", reply)
    return conv.id


def test_switch_chats_and_back(make_window, qtbot, services):
    older = _seed(services, "Older", ("What is tea?", "A drink."))
    newer = _seed(services, "Newer", ("Hello", "Hi!"))
    window = make_window()
    assert window.chat_list.titles() == ["Newer", "Older"]
    assert window.current_conversation_id == newer
    assert _texts(window) == [("user", "Hello"), ("assistant", "Hi!")]

    window.chat_list.select(older)
    assert window.current_conversation_id == older
    assert _texts(window) == [("user", "What is tea?"), ("assistant", "A drink.")]
    window.chat_list.select(newer)
    assert _texts(window) == [("user", "Hello"), ("assistant", "Hi!")]


def test_a_reply_keeps_streaming_into_its_chat_while_another_is_shown(
    window, qtbot, engine, services
):
    other = _seed(services, "Other", ("Q", "A"))
    window.refresh_chat_list()
    gate = StepGate()
    engine.gate = gate
    engine.enqueue(["Still ", "here"])
    window.new_chat()
    _type_and_send(qtbot, window, "Are you there?")
    streaming_chat = window.current_conversation_id
    gate.step()
    qtbot.waitUntil(lambda: _last_text(window) == "Still ")

    window.chat_list.select(other)
    assert _texts(window) == [("user", "Q"), ("assistant", "A")]
    assert window.chat_view.streaming_bubble is None
    assert window.send_button.text() == "Send"
    assert not window.send_button.isEnabled()  # one reply at a time

    window.chat_list.select(streaming_chat)
    assert _texts(window) == [("user", "Are you there?"), ("assistant", "Still ")]
    window.chat_list.select(other)
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        gate.set()
    assert _texts(window) == [("user", "Q"), ("assistant", "A")]
    window.chat_list.select(streaming_chat)
    assert _texts(window) == [("user", "Are you there?"), ("assistant", "Still here")]


def test_rename_from_the_list(make_window, qtbot, services):
    cid = _seed(services, "Old title", ("a", "b"))
    window = make_window()
    window.chat_list.item_for(cid).setText("Trip plans")  # what the inline editor commits
    qtbot.waitUntil(lambda: services.store.get_conversation(cid).title == "Trip plans")
    qtbot.waitUntil(lambda: window.windowTitle().startswith("Trip plans"))
    assert window.chat_list.titles() == ["Trip plans"]


def test_delete_asks_first(make_window, qtbot, services, monkeypatch):
    keep = _seed(services, "Keep", ("a", "b"))
    doomed = _seed(services, "Doomed", ("c", "d"))
    window = make_window()
    asked: list[str] = []

    def answer(reply):
        def question(parent, title, text, *args, **kwargs):
            asked.append(text)
            return reply

        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    window.chat_list.delete_requested.emit(doomed)
    assert "Doomed" in asked[0]
    assert [c.id for c in services.store.list_conversations()] == [doomed, keep]

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    window.chat_list.delete_requested.emit(doomed)
    assert [c.id for c in services.store.list_conversations()] == [keep]
    assert window.chat_list.ids() == [keep]
    assert window.current_conversation_id == keep
    assert _texts(window) == [("user", "a"), ("assistant", "b")]


def test_history_survives_a_restart(make_window, qtbot, engine, services):
    engine.enqueue("I remember.")
    first = make_window()
    with qtbot.waitSignal(first.model_ready, timeout=3000):
        first.load_model()
    with qtbot.waitSignal(first.turn_finished, timeout=3000):
        _type_and_send(qtbot, first, "Remember me")
    first.close()
    services.close()

    again = build_services()
    try:
        second = make_window(services=again)
        assert second.chat_list.titles() == ["Remember me"]
        assert _texts(second) == [("user", "Remember me"), ("assistant", "I remember.")]
    finally:
        second.close()
        again.close()


def test_a_model_that_fails_to_load_is_explained(make_window, qtbot):
    def broken():
        raise ModelFileError(
            "The model file /nowhere/model.gguf does not exist.",
            hint="Choose a .gguf file in Settings.",
        )

    window = make_window(broken)
    with qtbot.waitSignal(window.model_failed, timeout=3000):
        window.load_model()
    assert window.isVisible()
    assert window.model_state == ModelState.FAILED
    assert "does not exist" in window.status.state_label.text()
    assert window.status.choose_model_button.isVisible()
    assert window.banner.isVisible()
    assert "Choose a .gguf file" in window.banner.text
    assert window.banner.action_button.text() == "Choose model…"
    qtbot.keyClicks(window.composer.edit, "hello?")
    assert not window.send_button.isEnabled()
    assert "No model" in window.send_button.toolTip()


def test_an_unexpected_error_while_replying_is_shown_not_raised(window, qtbot, engine, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("decoder exploded")
        yield  # pragma: no cover

    engine.stream = explode
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        _type_and_send(qtbot, window, "hi")
    assert "Something went wrong: decoder exploded" in window.banner.text
    assert any("decoder exploded" in str(r.exc_info) for r in caplog.records if r.exc_info)
    # The user's message was saved; the failed reply left no bubble behind, and the chat
    # offers to try again.
    assert _texts(window) == [("user", "hi")]
    assert window.chat_view.last_bubble().regenerate_button.isVisible()
    assert window.send_button.text() == "Send"


def test_older_turns_left_out_are_noted(make_window, qtbot, services):
    long = " ".join(["word"] * 60)
    _seed(services, "Long", (long, long), (long, long))
    small = ScriptedEngine(n_ctx=300)
    small.enqueue("ok")
    window = make_window(lambda: small)
    with qtbot.waitSignal(window.model_ready, timeout=3000):
        window.load_model()
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        _type_and_send(qtbot, window, "and now?")
    bubble = window.chat_view.last_reply()
    assert bubble.context_note.isVisible()
    assert "left out" in bubble.context_note.text()


def test_export_writes_json(window, qtbot, engine, tmp_path):
    engine.enqueue("Exported reply")
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        _type_and_send(qtbot, window, "export me")
    target = tmp_path / "chat.json"
    window.export_conversation_to(window.current_conversation_id, target)
    qtbot.waitUntil(target.exists)
    data = json.loads(target.read_text(encoding="utf-8"))
    assert [m["content"] for m in data["thread"]] == ["export me", "Exported reply"]


def test_new_chat_reuses_an_empty_one(window, qtbot, services):
    window.new_chat()
    first = window.current_conversation_id
    window.new_chat()
    assert window.current_conversation_id == first
    assert len(services.store.list_conversations()) == 1


def test_enter_sends_and_shift_enter_adds_a_line(window, qtbot, engine, services):
    engine.enqueue("Got it")
    edit = window.composer.edit
    edit.setFocus()
    qtbot.keyClicks(edit, "first line")
    qtbot.keyClick(edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(edit, "second line")
    assert window.composer.text() == "first line\nsecond line"
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        qtbot.keyClick(edit, Qt.Key.Key_Return)
    thread = services.store.thread(window.current_conversation_id)
    assert thread[0].content == "first line\nsecond line"


def test_closing_while_replying_saves_the_partial_reply(window, qtbot, engine, services):
    gate = StepGate()
    engine.gate = gate
    engine.enqueue(["Partial ", "reply ", "never finished"])
    _type_and_send(qtbot, window, "Talk")
    cid = window.current_conversation_id
    gate.step(2)
    qtbot.waitUntil(lambda: _last_text(window) == "Partial reply ")
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        window.close()
        gate.set()
    assert not window.isVisible()
    reply = services.store.thread(cid)[-1]
    assert (reply.content, reply.status) == ("Partial reply", "stopped")


def test_choose_model_after_a_failure_saves_it_and_loads_again(
    make_window, qtbot, services, engine, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog

    model = tmp_path / "other.gguf"
    model.write_bytes(b"GGUF")
    attempts: list[str] = []

    def loader():
        attempts.append(services.settings.model.path)
        if len(attempts) == 1:
            raise ModelFileError("The bundled model is not installed.")
        return engine

    window = make_window(loader)
    with qtbot.waitSignal(window.model_failed, timeout=3000):
        window.load_model()
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(model), "GGUF models (*.gguf)")
    )
    with qtbot.waitSignal(window.model_ready, timeout=3000):
        qtbot.mouseClick(window.banner.action_button, Qt.MouseButton.LeftButton)
    assert attempts == ["", str(model)]
    assert services.settings.model.path == str(model)
    assert str(model) in services.paths.settings.read_text(encoding="utf-8")
    assert not window.banner.isVisible() or window.banner.kind != "error"
    assert not window.status.choose_model_button.isVisible()


def test_the_memory_model_loads_after_the_chat_model_not_at_the_first_message(
        make_window, qtbot, services, monkeypatch):
    class SlowEmbedder:
        """Loads like MiniLM (seconds), on whichever thread asks first."""

        name, dim = "slow", 384

        def __init__(self) -> None:
            self.loaded = False
            self.loaded_on: str | None = None
            self.order: list[str] = []

        def load(self) -> None:
            self.order.append("embedder")
            self.loaded_on = threading.current_thread().name
            self.loaded = True

    embedder = SlowEmbedder()
    memory = type("Memory", (), {"embedder": embedder, "close": lambda self: None})()
    monkeypatch.setattr(services, "_memory", memory)
    monkeypatch.setattr(services, "_memory_tried", True)

    def load_engine():
        embedder.order.append("chat model")
        return ScriptedEngine()

    window = make_window(loader=load_engine)
    with qtbot.waitSignals([window.model_ready, window.memory_warmed], timeout=5000):
        window.load_model()
    assert embedder.loaded and embedder.order == ["chat model", "embedder"]
    assert embedder.loaded_on != threading.main_thread().name  # never on the GUI thread

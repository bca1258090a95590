"""Feedback under each reply, driven like a user would: buttons, chips, comments, versions."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import Qt

from ghostdesk.core.errors import StorageError
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.services import build_services


def _send(qtbot, window, text: str) -> None:
    window.composer.edit.setFocus()
    qtbot.keyClicks(window.composer.edit, text)
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)


def _click(qtbot, window, button) -> None:
    with qtbot.waitSignal(window.feedback.saved, timeout=3000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _shown(bubble) -> set[str]:
    return set(bubble.feedback.shown_ratings())


def _saved(services, message_id: int) -> set[str]:
    return set(services.ledger.state_for([message_id])[message_id].ratings)


def test_only_companion_replies_have_feedback_buttons(window, qtbot, engine):
    engine.enqueue("Hello!")
    _send(qtbot, window, "hi")
    user, reply = window.chat_view.bubbles()
    assert user.feedback is None
    buttons = reply.feedback.buttons
    assert [b.text() for b in buttons.values()] == ["👍", "👎", "😂"]
    assert [b.accessibleName() for b in buttons.values()] == [
        "Good reply",
        "Bad reply",
        "Made me laugh",
    ]
    assert all(b.isVisible() and b.isCheckable() for b in buttons.values())
    assert reply.feedback.comment_button.text() == "Comment…"
    assert reply.feedback.better_button.text() == "Better reply…"


def test_up_and_down_exclude_each_other_and_laugh_goes_with_either(window, qtbot, engine, services):
    engine.enqueue("Hello!")
    _send(qtbot, window, "hi")
    reply = window.chat_view.last_reply()
    buttons = reply.feedback.buttons
    _click(qtbot, window, buttons["up"])
    assert _shown(reply) == {"up"} == _saved(services, reply.message_id)
    _click(qtbot, window, buttons["laugh"])
    assert _shown(reply) == {"up", "laugh"} == _saved(services, reply.message_id)
    _click(qtbot, window, buttons["down"])
    assert _shown(reply) == {"down", "laugh"} == _saved(services, reply.message_id)
    _click(qtbot, window, buttons["down"])  # a second click takes it back
    assert _shown(reply) == {"laugh"} == _saved(services, reply.message_id)


def test_the_button_changes_before_the_disk_write_finishes(window, qtbot, engine, services):
    engine.enqueue("Hello!")
    _send(qtbot, window, "hi")
    reply = window.chat_view.last_reply()
    release = threading.Event()
    real_rate = services.ledger.rate

    def slow_rate(*args, **kwargs):
        release.wait(5)
        return real_rate(*args, **kwargs)

    services.ledger.rate = slow_rate
    try:
        qtbot.mouseClick(reply.feedback.buttons["up"], Qt.MouseButton.LeftButton)
        # The write is stuck on the writer thread, yet the button already shows the rating.
        assert _shown(reply) == {"up"}
        assert _saved(services, reply.message_id) == set()
        assert window.feedback.busy
        with qtbot.waitSignal(window.feedback.saved, timeout=3000):
            release.set()
    finally:
        services.ledger.rate = real_rate
    assert _saved(services, reply.message_id) == {"up"}
    assert not window.feedback.busy


def test_quick_clicks_are_saved_in_order(window, qtbot, engine, services):
    engine.enqueue("Hello!")
    _send(qtbot, window, "hi")
    reply = window.chat_view.last_reply()
    buttons = reply.feedback.buttons
    for kind in ("up", "down", "laugh", "up", "laugh"):
        qtbot.mouseClick(buttons[kind], Qt.MouseButton.LeftButton)
    assert _shown(reply) == {"up"}
    qtbot.waitUntil(lambda: not window.feedback.busy, timeout=3000)
    assert _saved(services, reply.message_id) == {"up"} == _shown(reply)


def test_a_failed_write_puts_the_button_back_and_says_why(window, qtbot, engine, services):
    engine.enqueue("Hello!")
    _send(qtbot, window, "hi")
    reply = window.chat_view.last_reply()

    def full_disk(*args, **kwargs):
        raise StorageError("The disk is full, so GhostDesk could not save.", hint="Free space.")

    services.ledger.rate = full_disk
    try:
        with qtbot.waitSignal(window.feedback.failed, timeout=3000):
            qtbot.mouseClick(reply.feedback.buttons["laugh"], Qt.MouseButton.LeftButton)
    finally:
        del services.ledger.rate
    assert _shown(reply) == set()
    assert window.banner.kind == "error"
    assert "disk is full" in window.banner.text


def test_feedback_survives_a_restart(make_window, qtbot, engine, services):
    engine.enqueue("I remember.")
    first = make_window()
    with qtbot.waitSignal(first.model_ready, timeout=3000):
        first.load_model()
    _send(qtbot, first, "Remember me")
    reply = first.chat_view.last_reply()
    _click(qtbot, first, reply.feedback.buttons["up"])
    _click(qtbot, first, reply.feedback.buttons["laugh"])
    first.close()
    first.shutdown()
    services.close()

    again = build_services()
    try:
        second = make_window(services=again)
        reloaded = second.chat_view.last_reply()
        assert reloaded.message_id == reply.message_id
        assert _shown(reloaded) == {"up", "laugh"}
        assert reloaded.feedback.buttons["up"].isChecked()
    finally:
        second.close()
        second.shutdown()
        again.close()


def test_each_version_of_a_reply_keeps_its_own_feedback(window, qtbot, engine, services):
    engine.enqueue("First answer", "Second answer")
    _send(qtbot, window, "Tell me something")
    first = window.chat_view.last_reply()
    _click(qtbot, window, first.feedback.buttons["down"])
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        qtbot.mouseClick(first.regenerate_button, Qt.MouseButton.LeftButton)
    second = window.chat_view.last_reply()
    assert second.version_label.text() == "2/2"
    assert _shown(second) == set()  # a new version starts unrated
    _click(qtbot, window, second.feedback.buttons["laugh"])

    qtbot.mouseClick(second.previous_version_button, Qt.MouseButton.LeftButton)
    shown = window.chat_view.last_reply()
    assert (shown.text(), _shown(shown)) == ("First answer", {"down"})
    qtbot.mouseClick(shown.next_version_button, Qt.MouseButton.LeftButton)
    shown = window.chat_view.last_reply()
    assert (shown.text(), _shown(shown)) == ("Second answer", {"laugh"})


def test_signals_from_the_next_message_show_as_chips_to_confirm_or_dismiss(
    window, qtbot, engine, services
):
    engine.enqueue("Why did the GPU cross the road?", "Glad you liked it!")
    _send(qtbot, window, "tell me a joke")
    _send(qtbot, window, "hahaha you get me")
    joke = window.chat_view.bubbles()[1]
    chips = joke.feedback.chip_widgets()
    assert [c.label.text() for c in chips] == [
        "😄 “hahaha”",
        "🤝 “you get me”",
        "↪ you kept talking",
    ]
    assert all(c.isVisible() for c in chips)
    laughter, understood, continued = chips
    assert laughter.confirm_button.isVisible() and laughter.dismiss_button.isVisible()
    assert not continued.confirm_button.isVisible()  # nothing to confirm, only to dismiss
    assert "hahaha" in laughter.toolTip() and "+1" in laughter.toolTip()

    with qtbot.waitSignal(window.feedback.saved, timeout=3000):
        qtbot.mouseClick(understood.dismiss_button, Qt.MouseButton.LeftButton)
    assert not understood.isVisible()
    with qtbot.waitSignal(window.feedback.saved, timeout=3000):
        qtbot.mouseClick(laughter.confirm_button, Qt.MouseButton.LeftButton)
    assert not laughter.confirm_button.isVisible()
    state = services.ledger.state_for([joke.message_id])[joke.message_id]
    assert [(s.kind, s.status) for s in state.signals] == [
        ("laughter", "confirmed"),
        ("understood", "dismissed"),
        ("continuation", "active"),
    ]
    assert state.reward == 1.1


def test_comment_and_better_reply(window, qtbot, engine, services):
    engine.enqueue("Hey.")
    _send(qtbot, window, "hi")
    reply = window.chat_view.last_reply()
    qtbot.mouseClick(reply.feedback.better_button, Qt.MouseButton.LeftButton)
    dialog = window.text_feedback_dialog
    assert dialog.windowTitle() == "Write a better reply"
    assert dialog.edit.toPlainText() == "Hey."  # starts from the reply itself
    dialog.edit.setPlainText("Hey you! How was your day?")
    with qtbot.waitSignal(window.feedback.saved, timeout=3000):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert reply.feedback.better_button.text() == "Better reply ✓"
    assert "How was your day" in reply.feedback.better_button.toolTip()

    qtbot.mouseClick(reply.feedback.comment_button, Qt.MouseButton.LeftButton)
    dialog = window.text_feedback_dialog
    assert not dialog.remove_button.isVisible()
    dialog.edit.setPlainText("a bit short")
    with qtbot.waitSignal(window.feedback.saved, timeout=3000):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    state = services.ledger.state_for([reply.message_id])[reply.message_id]
    assert (state.comment, state.better_reply) == ("a bit short", "Hey you! How was your day?")

    qtbot.mouseClick(reply.feedback.comment_button, Qt.MouseButton.LeftButton)
    dialog = window.text_feedback_dialog
    assert dialog.edit.toPlainText() == "a bit short" and dialog.remove_button.isVisible()
    with qtbot.waitSignal(window.feedback.saved, timeout=3000):
        qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert reply.feedback.comment_button.text() == "Comment…"
    assert services.ledger.state_for([reply.message_id])[reply.message_id].comment is None


def test_a_reply_left_alone_gets_an_abandoned_chip_when_the_chat_opens(
    make_window, qtbot, services
):
    long_ago = datetime.now(UTC) - timedelta(minutes=30)
    store = ConversationStore(services.db, clock=lambda: long_ago)
    cid = store.create_conversation("Earlier").id
    store.add_message(cid, "user", "good night")
    reply = store.add_message(cid, "assistant", "Sleep well!").id
    window = make_window()
    qtbot.waitUntil(
        lambda: bool(window.chat_view.last_reply().feedback.chip_widgets()), timeout=3000
    )
    [chip] = window.chat_view.last_reply().feedback.chip_widgets()
    assert chip.label.text() == "⏸ you left right after this reply"
    assert chip.confirm_button.isVisible()
    [pending] = services.ledger.pending()
    assert (pending.event.message_id, pending.event.kind) == (reply, "abandoned")

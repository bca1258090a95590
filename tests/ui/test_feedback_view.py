"""View ▸ Feedback: totals, signals to confirm, recently rated replies, training examples."""

from __future__ import annotations

import sqlite3

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from ghostdesk.core.feedback.split import split_of


def _send(qtbot, window, text: str) -> None:
    window.composer.edit.setFocus()
    qtbot.keyClicks(window.composer.edit, text)
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)


def test_the_view_shows_totals_pending_signals_recent_ratings_and_examples(
    window, qtbot, engine, services
):
    engine.enqueue("A joke.", "Thanks!")
    _send(qtbot, window, "tell me a joke")
    _send(qtbot, window, "haha")
    joke = window.chat_view.bubbles()[1]
    with qtbot.waitSignal(window.feedback.saved, timeout=3000):
        qtbot.mouseClick(joke.feedback.buttons["up"], Qt.MouseButton.LeftButton)

    window.feedback_action.trigger()
    view = window.feedback_view
    with qtbot.waitSignal(view.loaded, timeout=5000):
        pass
    assert view.isVisible()
    assert "👍 1" in view.totals_label.text()
    assert "1 signal to confirm" in view.totals_label.text()
    assert view.pending_tree.topLevelItemCount() == 1
    row = view.pending_tree.topLevelItem(0)
    assert row.text(0).startswith("😄 laughter") and row.text(1) == "haha"
    assert row.text(2) == "A joke."
    assert view.recent_tree.topLevelItemCount() == 1
    assert view.recent_tree.topLevelItem(0).text(1) == "👍"
    assert view.tabs.tabText(0) == "To confirm (1)"
    side = split_of(window.current_conversation_id)
    cell = view.findChild(QLabel, f"examples_kto_desirable_{side}")
    assert cell is not None and cell.text() == "1"  # the joke: 👍 + laughter + continued

    # Dismissing from the view updates the chat too.
    view.pending_tree.setCurrentItem(row)
    assert view.dismiss_button.isEnabled()
    with qtbot.waitSignal(view.loaded, timeout=5000):
        qtbot.mouseClick(view.dismiss_button, Qt.MouseButton.LeftButton)
    assert view.pending_tree.topLevelItemCount() == 0
    laughter = joke.feedback.chip_widgets()[0]
    assert not laughter.isVisible()
    state = services.ledger.state_for([joke.message_id])[joke.message_id]
    assert state.signals[0].status == "dismissed"


def test_double_clicking_a_rated_reply_opens_it(window, qtbot, engine, services):
    engine.enqueue("First answer", "Second answer")
    _send(qtbot, window, "question")
    first = window.chat_view.last_reply()
    first_id = first.message_id
    with qtbot.waitSignal(window.feedback.saved, timeout=3000):
        qtbot.mouseClick(first.feedback.buttons["laugh"], Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.turn_finished, timeout=3000):
        qtbot.mouseClick(first.regenerate_button, Qt.MouseButton.LeftButton)
    assert window.chat_view.last_reply().text() == "Second answer"

    window.feedback_action.trigger()
    view = window.feedback_view
    with qtbot.waitSignal(view.loaded, timeout=5000):
        pass
    item = view.recent_tree.topLevelItem(0)
    view.recent_tree.itemDoubleClicked.emit(item, 0)
    shown = window.chat_view.last_reply()
    assert (shown.message_id, shown.text()) == (first_id, "First answer")
    assert shown.feedback.buttons["laugh"].isChecked()


def test_a_damaged_weight_is_shown_in_the_view(window, qtbot, services):
    conn = sqlite3.connect(services.db.path)
    with conn:
        conn.execute("UPDATE reward_weights SET weight = 'lots' WHERE kind = 'down'")
    conn.close()
    window.feedback_action.trigger()
    view = window.feedback_view
    with qtbot.waitSignal(view.loaded, timeout=5000):
        pass
    assert view.problems_label.isVisible()
    assert "👎" in view.problems_label.text() and "'lots'" in view.problems_label.text()

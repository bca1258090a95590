"""Where the chat view stands when a chat opens."""

from __future__ import annotations


def test_opening_a_long_chat_shows_its_newest_messages(make_window, qtbot, services):
    cid = services.store.create_conversation("Long").id
    for i in range(40):
        user = services.store.add_message(cid, "user", f"message {i} " + "word " * (i % 7 * 5))
        services.store.add_message(cid, "assistant", f"Reply {i}. " * (3 + i % 9)
                                   + "\n\n- one\n- two", parent_id=user.id)
    window = make_window()
    view = window.chat_view
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=3000)
    qtbot.wait(50)
    last_row = view.last_bubble().parentWidget()
    visible_bottom = bar.value() + view.viewport().height()
    assert bar.value() == bar.maximum()
    assert last_row.geometry().bottom() <= visible_bottom
    assert visible_bottom - last_row.geometry().bottom() <= 40  # no blank page below it
    assert view.last_bubble().text().startswith("Reply 39.")

"""Memory in the window, driven like a user would: recalled memories under replies with Pin,
Edit and Forget, "Remember this", the Memory pane, notices as memory forms, memory off."""

from __future__ import annotations

from PySide6.QtCore import Qt

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.memory.embedder import EmbedderError
from ghostdesk.services import build_services

TEA = "The user loves green tea"


def _ready(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.memory.available is not None, timeout=5000)


def _send(qtbot, window, text: str) -> None:
    window.composer.edit.setFocus()
    qtbot.keyClicks(window.composer.edit, text)
    with qtbot.waitSignal(window.turn_finished, timeout=5000):
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)


def _click(qtbot, window, button, action: str) -> object:
    with qtbot.waitSignal(window.memory.done, timeout=5000,
                          check_params_cb=lambda a, _r: a == action) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    return blocker.args[1]


def _recall_tea(qtbot, window, services, engine):
    """A reply whose prompt recalled the tea memory; returns (crystal id, reply bubble)."""
    _ready(qtbot, window)
    crystal = services.memory.add_crystal(TEA).crystal
    engine.enqueue("Green tea it is.")
    _send(qtbot, window, TEA)
    return crystal.id, window.chat_view.last_reply()


def test_a_reply_shows_the_memories_recalled_for_it(window, qtbot, engine, services):
    _ready(qtbot, window)
    engine.enqueue("Hello!")
    _send(qtbot, window, "hi")
    assert not window.chat_view.last_reply().recalled.isVisible()  # nothing recalled yet

    cid, reply = _recall_tea(qtbot, window, services, engine)
    recalled = reply.recalled
    assert recalled.isVisible()
    assert recalled.toggle_button.text() == "▸ Recalled memories (1)"
    assert not recalled.is_expanded and not recalled.list.isVisible()
    qtbot.mouseClick(recalled.toggle_button, Qt.MouseButton.LeftButton)
    assert recalled.list.isVisible()
    assert recalled.toggle_button.text() == "▾ Recalled memories (1)"
    [row] = recalled.rows()
    assert (row.crystal.id, row.text_label.text()) == (cid, TEA)
    [stored] = services.memory.recalled_for_message(reply.message_id)
    assert row.score_label.text() == f"{stored.score:.2f}"
    assert 0.3 <= stored.score <= 1.0
    assert "Things you remember" in engine.prompts[-1].text
    assert window.chat_view.bubbles()[-2].recalled is None  # the user's message has none


def test_recalled_memories_show_after_a_restart(make_window, qtbot, engine, services):
    first = make_window()
    with qtbot.waitSignal(first.model_ready, timeout=3000):
        first.load_model()
    cid, reply = _recall_tea(qtbot, first, services, engine)
    first.close()
    first.shutdown()
    services.close()

    again = build_services()
    try:
        second = make_window(services=again)
        reloaded = second.chat_view.last_reply()
        assert reloaded.message_id == reply.message_id
        qtbot.waitUntil(lambda: reloaded.recalled.crystal_ids() == [cid], timeout=5000)
        assert reloaded.recalled.isVisible()
        [stored] = again.memory.recalled_for_message(reply.message_id)
        assert reloaded.recalled.rows()[0].score_label.text() == f"{stored.score:.2f}"
    finally:
        second.close()
        second.shutdown()
        again.close()


def test_pin_and_forget_from_under_the_reply(window, qtbot, engine, services):
    cid, reply = _recall_tea(qtbot, window, services, engine)
    reply.recalled.set_expanded(True)
    [row] = reply.recalled.rows()
    record = _click(qtbot, window, row.pin_button, "pin")
    assert record.pinned and services.memory.get(cid).pinned
    assert row.pin_button.isChecked() and row.pin_button.text() == "📌 Pinned"

    pane = window.memory.open_pane()
    qtbot.waitUntil(lambda: pane.ids() == [cid], timeout=5000)
    assert pane.tree.topLevelItem(0).text(4) == "📌"

    qtbot.mouseClick(row.forget_button, Qt.MouseButton.LeftButton)
    box = window.memory.confirm_box
    assert box.text() == "Forget this for good?" and TEA in box.informativeText()
    with qtbot.waitSignal(window.memory.done, timeout=5000):
        box.forget_button.click()
    assert services.memory.list_crystals(archived=None) == []
    assert reply.recalled.rows() == [] and not reply.recalled.isVisible()
    assert services.memory.recalled_for_message(reply.message_id) == []
    qtbot.waitUntil(lambda: pane.ids() == [], timeout=5000)
    assert window.banner.text == "Forgotten."


def test_keep_answers_no_and_a_failed_pin_goes_back(window, qtbot, engine, services):
    cid, reply = _recall_tea(qtbot, window, services, engine)
    reply.recalled.set_expanded(True)
    [row] = reply.recalled.rows()
    qtbot.mouseClick(row.forget_button, Qt.MouseButton.LeftButton)
    window.memory.confirm_box.keep_button.click()
    assert services.memory.get(cid).text == TEA

    def broken(*_args, **_kwargs):
        raise GhostDeskError("The memory could not be saved.")

    services.memory.pin = broken
    try:
        with qtbot.waitSignal(window.memory.failed, timeout=5000):
            qtbot.mouseClick(row.pin_button, Qt.MouseButton.LeftButton)
    finally:
        del services.memory.pin
    assert not row.pin_button.isChecked()
    assert window.banner.kind == "error" and "could not be saved" in window.banner.text


def test_edit_from_under_the_reply(window, qtbot, engine, services):
    cid, reply = _recall_tea(qtbot, window, services, engine)
    reply.recalled.set_expanded(True)
    qtbot.mouseClick(reply.recalled.rows()[0].edit_button, Qt.MouseButton.LeftButton)
    dialog = window.memory.dialog
    assert dialog.windowTitle() == "Edit memory" and dialog.edit.toPlainText() == TEA
    dialog.edit.setPlainText("The user loves sencha, a green tea")
    with qtbot.waitSignal(window.memory.done, timeout=5000):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert services.memory.get(cid).text == "The user loves sencha, a green tea"
    assert reply.recalled.rows()[0].text_label.text() == "The user loves sencha, a green tea"


def test_remember_this_on_a_message(window, qtbot, engine, services):
    _ready(qtbot, window)
    engine.enqueue("What a lovely name.")
    _send(qtbot, window, "My cat is called Miso")
    user, reply = window.chat_view.bubbles()
    assert user.remember_button.isVisible() and reply.remember_button.isVisible()

    [absorbed] = _click(qtbot, window, user.remember_button, "remember")
    assert not absorbed.merged
    assert (absorbed.crystal.text, absorbed.crystal.kind) == ("My cat is called Miso", "manual")
    assert absorbed.crystal.source_message_ids == (user.message_id,)
    assert window.banner.text == "Remembered."
    assert user.remember_button.text() == "Remembered ✓"

    [again] = _click(qtbot, window, user.remember_button, "remember")
    assert again.merged and window.banner.text == "Merged with an existing memory."
    _click(qtbot, window, reply.remember_button, "remember")
    texts = {c.text for c in services.memory.list_crystals()}
    assert texts == {"My cat is called Miso", "What a lovely name."}


def test_memory_pane_search_archive_and_restore(window, qtbot, services):
    _ready(qtbot, window)
    memory = services.memory
    tea = memory.add_crystal(TEA).crystal.id
    cello = memory.add_crystal("The user plays the cello every night").crystal.id
    assert window.memory_action.isVisible()
    assert window.memory_action.shortcut().toString() == "Ctrl+Shift+M"
    window.memory_action.trigger()
    pane = window.memory.pane
    qtbot.waitUntil(lambda: sorted(pane.ids()) == sorted([tea, cello]), timeout=5000)
    assert "2 memories in use" in pane.status_label.text()

    with qtbot.waitSignal(pane.loaded, timeout=5000):
        qtbot.keyClicks(pane.search_edit, "cello")
    assert pane.ids() == [cello]
    assert "Matched by words" in pane.tree.topLevelItem(0).toolTip(0)

    assert pane.select(cello)
    assert pane.archive_button.isEnabled() and not pane.restore_button.isVisible()
    _click(qtbot, window, pane.archive_button, "archive")
    assert memory.get(cello).archived
    qtbot.waitUntil(lambda: pane.tree.topLevelItem(0).text(5) == "archived", timeout=5000)
    assert pane.ids() == [cello]  # search looks in the archive too
    assert "1 archived" in pane.status_label.text()

    assert pane.select(cello)
    assert pane.restore_button.isVisible() and not pane.archive_button.isVisible()
    _click(qtbot, window, pane.restore_button, "restore")
    assert not memory.get(cello).archived
    qtbot.waitUntil(lambda: pane.tree.topLevelItem(0).text(5) == "active", timeout=5000)

    pane.search_edit.clear()
    qtbot.waitUntil(lambda: len(pane.ids()) == 2, timeout=5000)
    pane.show_combo.setCurrentIndex(2)  # archived only
    qtbot.waitUntil(lambda: pane.ids() == [], timeout=5000)


def test_memory_pane_add_and_import_a_document(window, qtbot, services, tmp_path):
    _ready(qtbot, window)
    pane = window.memory.open_pane()
    qtbot.mouseClick(pane.add_button, Qt.MouseButton.LeftButton)
    dialog = window.memory.dialog
    assert not dialog.save_button.isEnabled()
    dialog.edit.setPlainText("The user's sister Mei lives in Chengdu")
    with qtbot.waitSignal(window.memory.done, timeout=5000):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert window.banner.text == "Remembered."

    notes = tmp_path / "notes.md"
    notes.write_text("# Garden\n\nTomatoes go in after the last frost.\n\n"
                     "# Music\n\nThe cello needs new strings every year.\n", encoding="utf-8")
    with qtbot.waitSignal(window.memory.done, timeout=5000):
        pane.import_path(notes)
    kinds = sorted(c.kind for c in services.memory.list_crystals())
    assert kinds == ["document", "document", "manual"]
    assert window.banner.text.startswith("Imported notes.md: 2 passages (2 new")
    qtbot.waitUntil(lambda: len(pane.ids()) == 3, timeout=5000)

    with qtbot.waitSignal(window.memory.failed, timeout=5000):
        pane.import_path(tmp_path / "scan.pdf")
    assert pane.error_label.isVisible()


def test_a_turn_that_crystallizes_says_so(window, qtbot, engine, services):
    _ready(qtbot, window)
    services.memory.settings.crystallize_every = 1
    engine.enqueue("How nice!", "'s sister Mei lives in Chengdu. (5)")
    _send(qtbot, window, "My sister Mei lives in Chengdu")
    assert window.banner.text == "Remembered 1 new thing about you"
    assert [c.text for c in services.memory.list_crystals()] == [
        "The user's sister Mei lives in Chengdu."
    ]


def test_a_quiet_chat_is_crystallized(window, qtbot, engine, services):
    _ready(qtbot, window)
    engine.enqueue("Lovely.", "'s favourite tea is sencha. (4)\n- The user drinks it daily. (3)")
    window.memory.idle_timer.setInterval(30_000)
    _send(qtbot, window, "Sencha is my favourite tea, I drink it every day")
    assert window.memory.idle_timer.isActive()
    window.memory.idle_timer.setInterval(10)
    with qtbot.waitSignal(window.memory.idle_finished, timeout=5000) as blocker:
        window.memory.note_activity()
    assert len(blocker.args[0].added) == 2
    assert window.banner.text == "Remembered 2 new things about you"
    assert services.memory.pending_turns(window.current_conversation_id) == 0


def test_a_recall_problem_is_shown_once(window, qtbot, engine, services):
    _ready(qtbot, window)

    def broken(*_args, **_kwargs):
        raise EmbedderError("The memory model could not be loaded.")

    services.memory.recall_for = broken
    engine.enqueue("One.", "Two.")
    _send(qtbot, window, "hello")
    assert window.banner.kind == "warning"
    assert "memory model could not be loaded" in window.banner.text
    window.banner.dismiss()
    _send(qtbot, window, "hello again")
    assert window.banner.text == ""
    assert window.chat_view.last_reply().text() == "Two."


def test_memory_off_hides_the_memory_ui(make_window, qtbot, engine, services):
    services.settings.memory.enabled = False
    window = make_window()
    with qtbot.waitSignal(window.memory.availability_changed, timeout=5000):
        window.load_model()
    qtbot.waitUntil(lambda: window.is_model_ready, timeout=5000)
    assert window.memory.available is False
    assert not window.memory_action.isVisible()
    engine.enqueue("Hi!")
    _send(qtbot, window, "hello")
    for bubble in window.chat_view.bubbles():
        assert not bubble.remember_button.isVisible()
    assert not window.chat_view.last_reply().recalled.isVisible()


def test_unavailable_memory_says_why_once(make_window, qtbot, monkeypatch):
    def no_model():
        raise EmbedderError("The memory model (all-MiniLM-L6-v2) is not installed.")

    monkeypatch.setattr("ghostdesk.services.make_embedder", no_model)
    window = make_window()
    with qtbot.waitSignal(window.memory.availability_changed, timeout=5000):
        pass
    assert window.memory.available is False
    assert window.banner.kind == "warning"
    assert window.banner.text.count("Memory is unavailable") == 1
    assert "not installed" in window.banner.text
    assert not window.memory_action.isVisible()

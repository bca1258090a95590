"""Memory in the window: recalled memories under replies, "Remember this", the Memory pane,
notices as memory forms, and crystallization when a chat goes quiet.

Every MemoryService call runs on one worker thread of its own, opening memory first (the
embedder and the index take a moment), so calls keep the order of the clicks and the GUI
thread never waits on the embedder or the disk. A failed change puts back what is saved and
says why. Crystallizing a quiet chat runs the chat model, so it runs on a pool thread, and
only while no reply is being written: the model has one lane.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from ghostdesk.core.companion import (
    MemoriesCrystallized,
    MemoriesRecalled,
    ReplySaved,
    ReplyStarted,
)
from ghostdesk.ui.memory_dialogs import MemoryTextDialog, ask_to_forget
from ghostdesk.ui.recalled_memories import RecalledRow, rows_from_recall, rows_from_stored
from ghostdesk.ui.workers import SerialWorker, WorkFailed, call_in_background

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from ghostdesk.ui.main_window import MainWindow
    from ghostdesk.ui.message_bubble import MessageBubble

log = logging.getLogger("ghostdesk.ui")

IDLE_CRYSTALLIZE_MS = 5 * 60_000
"""A chat this long without activity is quiet: what it taught is put into memory."""
ReportError = Callable[[BaseException, str], None]
Done = Callable[[Any, BaseException | None], None]


class MemoryController(QObject):
    """One per window. Test hooks: `available` (None while opening), `memory`, `pane`,
    `dialog`, `confirm_box`, `idle_timer`; signals `availability_changed`, `done`, `failed`,
    `recalls_loaded`, `idle_finished`, `changed`."""

    availability_changed = Signal(bool)
    changed = Signal()
    """Memories were added, changed or forgotten (the Memory pane refreshes)."""
    done = Signal(str, object)
    """(action, result): "pin", "edit", "forget", "archive", "restore", "add", "import",
    "remember" finished and is shown."""
    failed = Signal(str, object)
    """(action, error): it failed, the UI shows what is saved again and the banner says why."""
    recalls_loaded = Signal()
    idle_finished = Signal(object)
    """A quiet chat was crystallized (carries the Crystallization, or None)."""

    def __init__(self, window: MainWindow, report_error: ReportError) -> None:
        super().__init__(window)
        self.window = window
        self.services = window.services
        self.chat_view = window.chat_view
        self._report_error = report_error
        self.available: bool | None = None
        self.memory: Any = None
        self.pane: Any = None
        self.dialog: MemoryTextDialog | None = None
        self.confirm_box: Any = None
        # One thread: memory calls happen in the order asked, never two at once.
        self._worker = SerialWorker("ghostdesk-memory", self)
        self._closed = False
        self._recalls: dict[int, list[RecalledRow]] = {}
        self._live: list[RecalledRow] = []
        self._problems_shown: set[str] = set()
        self._generation = 0
        self._idle_running = False
        self.idle_timer = QTimer(self, singleShot=True, interval=IDLE_CRYSTALLIZE_MS)
        self.idle_timer.timeout.connect(self._on_idle_timer_timeout)
        self.chat_view.bubble_added.connect(self._hook_bubble)
        window.conversation_shown.connect(self._on_conversation_shown)
        window.turn_started.connect(self._on_turn_started)
        window.turn_finished.connect(self._on_turn_finished)
        window.composer.edit.textChanged.connect(self.note_activity)

    # -- opening ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open memory on the memory thread; its UI shows once it is open."""
        self._show_ui(False)
        services, seen = self.services, len(self.services.notices)
        self._submit(lambda: services.memory, lambda m, err: self._on_opened(m, err, seen))

    def _on_opened(self, memory: Any, error: BaseException | None, seen: int) -> None:
        news = [n for n in self.services.notices[seen:] if n]
        if error is not None:
            log.error("opening memory failed", exc_info=error)
            news.append(f"Memory is unavailable: {error}")
        self.memory = memory if error is None else None
        self.available = self.memory is not None
        if news:
            if self.available:
                self.window.notify("\n".join(news))
            else:
                self.window.banner.show_message("\n".join(news), "warning")
        self._show_ui(self.available)
        self.availability_changed.emit(self.available)
        if self.available:
            self._load_view_recalls()
            self.note_activity()

    def _show_ui(self, on: bool) -> None:
        action = getattr(self.window, "memory_action", None)
        if action is not None:
            action.setVisible(on)
            action.setEnabled(on)
        for bubble in self.chat_view.bubbles():
            bubble.set_memory_enabled(on)

    def _hook_bubble(self, bubble: MessageBubble) -> None:
        bubble.set_memory_enabled(bool(self.available))
        bubble.remember_requested.connect(lambda b=bubble: self._on_remember_requested(b))
        if bubble.recalled is not None:
            bubble.recalled.pin_requested.connect(self.pin)
            bubble.recalled.edit_requested.connect(lambda cid: self.ask_edit(cid))
            bubble.recalled.forget_requested.connect(lambda cid: self.ask_forget(cid))

    # -- recalled memories under replies ---------------------------------------------------

    def on_turn_event(self, event: Any, viewing: bool) -> None:
        """Called by the window with each event of the turn in flight."""
        if isinstance(event, MemoriesRecalled):
            self._live = rows_from_recall(event.recall)
            if event.problem and event.problem not in self._problems_shown:
                self._problems_shown.add(event.problem)
                self.window.banner.show_message(
                    f"{event.problem}\nReplies are written without memories meanwhile.",
                    "warning")
        elif isinstance(event, ReplyStarted):
            if viewing and self.chat_view.streaming_bubble is not None:
                _show_rows(self.chat_view.streaming_bubble, self._live)
        elif isinstance(event, ReplySaved):
            rows, self._live = self._live, []
            self._recalls[event.message.id] = rows
            bubble = self.chat_view.bubble_for(event.message.id)
            if bubble is not None:
                _show_rows(bubble, rows)
        elif isinstance(event, MemoriesCrystallized):
            self._announce(event.result)

    def _on_conversation_shown(self, _conversation_id: int) -> None:
        self._load_view_recalls()
        self.note_activity()

    def _load_view_recalls(self) -> None:
        """Show the replies' recalled memories: what is known at once, then fresh from the
        database, read on the memory thread in one go for the whole chat."""
        if not self.available:
            return
        ids = [b.message_id for b in self.chat_view.bubbles()
               if b.role == "assistant" and b.message_id is not None]
        for mid in ids:
            if mid in self._recalls:
                _show_rows(self.chat_view.bubble_for(mid), self._recalls[mid])
        if self.chat_view.streaming_bubble is not None and self._live:
            _show_rows(self.chat_view.streaming_bubble, self._live)
        if not ids:
            return
        if len(self._recalls) > 20_000:
            self._recalls.clear()
        self._generation += 1
        generation, memory = self._generation, self.memory

        def read() -> dict[int, list[RecalledRow]]:
            return {mid: rows_from_stored(memory.recalled_for_message(mid)) for mid in ids}

        def shown(result: Any, error: BaseException | None) -> None:
            if error is not None:
                log.warning("reading recalled memories failed: %s", error)
                return
            self._recalls.update(result)
            if generation == self._generation:
                for mid, rows in result.items():
                    _show_rows(self.chat_view.bubble_for(mid), rows)
            self.recalls_loaded.emit()

        self._submit(read, shown)

    # -- the user's controls ---------------------------------------------------------------

    def pin(self, crystal_id: int, pinned: bool = True) -> None:
        memory = self.memory
        self._change("pin", lambda: memory.pin(crystal_id, pinned), self._show_crystal,
                     "pinning a memory", crystal_id)

    def edit(self, crystal_id: int, text: str) -> None:
        memory = self.memory
        self._change("edit", lambda: memory.edit(crystal_id, text), self._show_crystal,
                     "changing a memory", crystal_id)

    def archive(self, crystal_id: int) -> None:
        memory = self.memory
        self._change("archive", lambda: memory.archive(crystal_id), self._show_crystal,
                     "archiving a memory", crystal_id)

    def restore(self, crystal_id: int) -> None:
        memory = self.memory
        self._change("restore", lambda: memory.restore(crystal_id), self._show_crystal,
                     "restoring a memory", crystal_id)

    def forget(self, crystal_id: int) -> None:
        """Forget for good, without asking (ask_forget asks first)."""
        memory = self.memory

        def gone(_existed: Any) -> None:
            self._drop_crystal(crystal_id)
            self.window.notify("Forgotten.")

        self._change("forget", lambda: memory.forget(crystal_id), gone, "forgetting a memory")

    def add(self, text: str) -> None:
        memory = self.memory
        self._change("add", lambda: memory.add_crystal(text, kind="manual",
                                                       importance=_manual_importance(memory)),
                     lambda absorbed: self.window.notify(_absorbed_notice([absorbed])),
                     "remembering what you wrote")

    def import_document(self, path: str | Path) -> None:
        memory, path = self.memory, Path(path)

        def imported(result: Any) -> None:
            self.window.notify(
                f"Imported {result.name}: {_n(result.passages, 'passage')} "
                f"({result.added} new, {result.merged} merged with existing memories).")

        self._change("import", lambda: memory.import_document(path), imported,
                     f"importing {path.name}")

    def remember_message(self, message_id: int) -> None:
        """"Remember this" on a message: its text becomes a memory."""
        memory = self.memory

        def remembered(absorbed: Any) -> None:
            self.window.notify(_absorbed_notice(absorbed))
            bubble = self.chat_view.bubble_for(message_id)
            if bubble is not None:
                button = bubble.remember_button
                button.setText("Remembered ✓")
                QTimer.singleShot(2000, button, lambda: button.setText("Remember"))

        self._change("remember", lambda: memory.remember_message(message_id), remembered,
                     "remembering a message")

    def ask_forget(self, crystal_id: int, text: str | None = None,
                   parent: QWidget | None = None) -> Any:
        """Ask "Forget this for good?", then forget. Returns the question box."""
        text = text if text is not None else self._crystal_text(crystal_id)
        self.confirm_box = ask_to_forget(parent or self.window, text,
                                         lambda: self.forget(crystal_id))
        return self.confirm_box

    def ask_edit(self, crystal_id: int, text: str | None = None,
                 parent: QWidget | None = None) -> MemoryTextDialog:
        old = text if text is not None else self._crystal_text(crystal_id)
        dialog = MemoryTextDialog(
            "Edit memory", "Change what is remembered. The memory keeps its importance and "
            "where it came from.", old, parent or self.window)
        dialog.text_saved.connect(lambda new: new != old and self.edit(crystal_id, new))
        return self._open(dialog)

    def ask_add(self, parent: QWidget | None = None) -> MemoryTextDialog:
        dialog = MemoryTextDialog(
            "Add a memory", "Something about you worth remembering, in one or two sentences. "
            "It is recalled when a chat touches on it.", "", parent or self.window)
        dialog.text_saved.connect(self.add)
        return self._open(dialog)

    def open_pane(self) -> Any:
        """Open (or raise) View ▸ Memory and return it."""
        from ghostdesk.ui.memory_pane import MemoryPane

        if self.pane is not None and self.pane.isVisible():
            self.pane.raise_()
            self.pane.refresh()
            return self.pane
        pane = MemoryPane(self, self.window)
        pane.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        pane.destroyed.connect(self._on_pane_destroyed)
        self.pane = pane
        pane.show()
        return pane

    def _on_pane_destroyed(self) -> None:
        self.pane = None

    def read(self, work: Callable[[Any], Any], on_done: Done) -> None:
        """Run `work(memory)` on the memory thread (after the changes asked before it)."""
        memory = self.memory
        self._submit(lambda: work(memory), on_done)

    # -- quiet chats -----------------------------------------------------------------------

    def note_activity(self) -> None:
        """Something happened in the chat: it is not quiet (yet)."""
        if self.available and self.window.current_conversation_id is not None:
            self.idle_timer.start()

    def _on_turn_started(self, _conversation_id: int) -> None:
        self.idle_timer.stop()
        self._live = []

    def _on_turn_finished(self, _conversation_id: int) -> None:
        self._live = []
        self.note_activity()

    def _on_idle_timer_timeout(self) -> None:
        if not self.available or self._idle_running or self._closed:
            return
        if self.window.is_replying:
            self.idle_timer.start()  # the model is busy: look again later
            return
        cid, engine, memory = self.window.current_conversation_id, self.window.engine, self.memory
        if cid is None:
            return
        self._idle_running = True
        call_in_background(lambda: memory.on_idle(cid, engine), self._on_idle_done)

    def _on_idle_done(self, result: Any) -> None:
        self._idle_running = False
        if self._closed:
            return
        if isinstance(result, WorkFailed):
            log.warning("crystallizing a quiet chat failed: %s", result.error)
            result = None
        elif result is not None:
            self._announce(result)
        self.idle_finished.emit(result)

    def _announce(self, result: Any) -> None:
        added, merged = len(result.added), len(result.merged)
        if added:
            text = f"Remembered {_n(added, 'new thing')} about you"
            if merged:
                text += f" (and updated {_n(merged, 'memory', 'memories')})"
        elif merged:
            text = f"Updated {_n(merged, 'memory', 'memories')} about you"
        else:
            return
        self.window.notify(text)
        self.changed.emit()

    # -- showing changes -------------------------------------------------------------------

    def _show_crystal(self, record: Any) -> None:
        for mid, rows in self._recalls.items():
            if any(r.crystal.id == record.id for r in rows):
                self._recalls[mid] = [RecalledRow(record, r.score) if r.crystal.id == record.id
                                      else r for r in rows]
        for bubble in self.chat_view.bubbles():
            if bubble.recalled is not None:
                bubble.recalled.update_crystal(record)

    def _drop_crystal(self, crystal_id: int) -> None:
        for mid, rows in self._recalls.items():
            self._recalls[mid] = [r for r in rows if r.crystal.id != crystal_id]
        self._live = [r for r in self._live if r.crystal.id != crystal_id]
        for bubble in self.chat_view.bubbles():
            if bubble.recalled is not None:
                bubble.recalled.remove_crystal(crystal_id)

    def _undo_click(self, crystal_id: int) -> None:
        for bubble in self.chat_view.bubbles():
            for row in bubble.recalled.rows() if bubble.recalled is not None else []:
                if row.crystal.id == crystal_id:
                    row.set_crystal(row.crystal)

    def _crystal_text(self, crystal_id: int) -> str:
        for rows in (self._live, *self._recalls.values()):
            for r in rows:
                if r.crystal.id == crystal_id:
                    return r.crystal.text
        return ""

    def _open(self, dialog: MemoryTextDialog) -> MemoryTextDialog:
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        self.dialog = dialog
        dialog.open()
        return dialog

    def _on_remember_requested(self, bubble: MessageBubble) -> None:
        if bubble.message_id is not None and self.available:
            self.remember_message(bubble.message_id)

    # -- plumbing --------------------------------------------------------------------------

    def _change(self, action: str, work: Callable[[], Any], shown: Callable[[Any], None],
                context: str, crystal_id: int | None = None) -> None:
        if not self.available:
            return

        def done(result: Any, error: BaseException | None) -> None:
            if error is not None:
                if crystal_id is not None:
                    self._undo_click(crystal_id)
                self._report_error(error, context)
                self.failed.emit(action, error)
                return
            shown(result)
            self.changed.emit()
            self.done.emit(action, result)

        self._submit(work, done)

    def _submit(self, work: Callable[[], Any], on_done: Done) -> None:
        if not self._closed:
            self._worker.submit(work, on_done)

    def shutdown(self) -> None:
        """Finish the memory calls already asked for, then stop. Call before memory closes."""
        self._closed = True
        self.idle_timer.stop()
        self._worker.shutdown()


def _show_rows(bubble: MessageBubble | None, rows: list[RecalledRow]) -> None:
    if bubble is not None and bubble.recalled is not None:
        bubble.recalled.set_rows(rows)


def _manual_importance(memory: Any) -> float:
    return float(getattr(getattr(memory, "settings", None), "manual_importance", 0.8))


def _absorbed_notice(absorbed: list[Any]) -> str:
    if absorbed and all(a.merged for a in absorbed):
        return "Merged with an existing memory."
    if len(absorbed) > 1:
        return f"Remembered ({len(absorbed)} passages)."
    return "Remembered."


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"

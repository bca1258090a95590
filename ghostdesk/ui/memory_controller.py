"""Memory in the window: opening it, the user's controls ("Remember this", pin, edit,
forget, the Memory pane), and the turn's memory events.

Every MemoryService call runs on one worker thread of its own, opening memory first (the
embedder and the index take a moment), so calls keep the order of the clicks and the GUI
thread never waits on the embedder or the disk. A failed change puts back what is saved and
says why. The recalled memories under replies are kept in memory_recalls.py; crystallizing
a quiet chat is quiet_chat_crystallizer.py.
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
from ghostdesk.ui.memory_notices import (
    absorbed_notice,
    crystallization_notice,
    import_notice,
)
from ghostdesk.ui.memory_recalls import ReplyRecalls
from ghostdesk.ui.quiet_chat_crystallizer import QuietChatCrystallizer
from ghostdesk.ui.workers import SerialWorker

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from ghostdesk.ui.main_window import MainWindow
    from ghostdesk.ui.message_bubble import MessageBubble

log = logging.getLogger("ghostdesk.ui")

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
        self._problems_shown: set[str] = set()
        self.recalls = ReplyRecalls(self.chat_view, self._submit, self.recalls_loaded.emit)
        self.quiet = QuietChatCrystallizer(
            window, lambda: self.memory if self.available else None, self._announce, self)
        self.quiet.finished.connect(self.idle_finished)
        self.idle_timer = self.quiet.timer
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
            self._on_conversation_shown()

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

    # -- the turn's memory events (recalled rows in memory_recalls.py) ---------------------

    def on_turn_event(self, event: Any, viewing: bool) -> None:
        """Called by the window with each event of the turn in flight."""
        if isinstance(event, MemoriesRecalled):
            self.recalls.recalled(event.recall)
            if event.problem and event.problem not in self._problems_shown:
                self._problems_shown.add(event.problem)
                self.window.banner.show_message(
                    f"{event.problem}\nReplies are written without memories meanwhile.",
                    "warning")
        elif isinstance(event, ReplyStarted):
            if viewing:
                self.recalls.reply_started()
        elif isinstance(event, ReplySaved):
            self.recalls.reply_saved(event.message.id)
        elif isinstance(event, MemoriesCrystallized):
            self._announce(event.result)

    def _on_conversation_shown(self, _conversation_id: int | None = None) -> None:
        if self.available:
            self.recalls.load(self.memory)
        self.note_activity()

    # -- the user's controls ---------------------------------------------------------------

    def pin(self, crystal_id: int, pinned: bool = True) -> None:
        memory = self.memory
        self._change("pin", lambda: memory.pin(crystal_id, pinned), self.recalls.show_crystal,
                     "pinning a memory", crystal_id)

    def edit(self, crystal_id: int, text: str) -> None:
        memory = self.memory
        self._change("edit", lambda: memory.edit(crystal_id, text), self.recalls.show_crystal,
                     "changing a memory", crystal_id)

    def archive(self, crystal_id: int) -> None:
        memory = self.memory
        self._change("archive", lambda: memory.archive(crystal_id), self.recalls.show_crystal,
                     "archiving a memory", crystal_id)

    def restore(self, crystal_id: int) -> None:
        memory = self.memory
        self._change("restore", lambda: memory.restore(crystal_id), self.recalls.show_crystal,
                     "restoring a memory", crystal_id)

    def forget(self, crystal_id: int) -> None:
        """Forget for good, without asking (ask_forget asks first)."""
        memory = self.memory

        def gone(_existed: Any) -> None:
            self.recalls.drop_crystal(crystal_id)
            self.window.notify("Forgotten.")

        self._change("forget", lambda: memory.forget(crystal_id), gone, "forgetting a memory")

    def add(self, text: str) -> None:
        memory = self.memory
        self._change("add", lambda: memory.add_crystal(text, kind="manual",
                                                       importance=_manual_importance(memory)),
                     lambda absorbed: self.window.notify(absorbed_notice([absorbed])),
                     "remembering what you wrote")

    def import_document(self, path: str | Path) -> None:
        memory, path = self.memory, Path(path)

        self._change("import", lambda: memory.import_document(path),
                     lambda result: self.window.notify(import_notice(result)),
                     f"importing {path.name}")

    def remember_message(self, message_id: int) -> None:
        """"Remember this" on a message: its text becomes a memory."""
        memory = self.memory

        def remembered(absorbed: Any) -> None:
            self.window.notify(absorbed_notice(absorbed))
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
        text = text if text is not None else self.recalls.crystal_text(crystal_id)
        self.confirm_box = ask_to_forget(parent or self.window, text,
                                         lambda: self.forget(crystal_id))
        return self.confirm_box

    def ask_edit(self, crystal_id: int, text: str | None = None,
                 parent: QWidget | None = None) -> MemoryTextDialog:
        old = text if text is not None else self.recalls.crystal_text(crystal_id)
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

    # -- quiet chats (quiet_chat_crystallizer.py) -----------------------------------------

    def note_activity(self) -> None:
        """Something happened in the chat: it is not quiet (yet)."""
        self.quiet.note_activity()

    def _on_turn_started(self, _conversation_id: int) -> None:
        self.quiet.stop()
        self.recalls.live = []

    def _on_turn_finished(self, _conversation_id: int) -> None:
        self.recalls.live = []
        self.note_activity()

    def _announce(self, result: Any) -> None:
        """Tell what a crystallization remembered (nothing when it changed nothing)."""
        text = crystallization_notice(result)
        if text is not None:
            self.window.notify(text)
            self.changed.emit()

    # -- dialogs -----------------------------------------------------------------------------

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
                    self.recalls.undo_click(crystal_id)
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
        self.quiet.close()
        self._worker.shutdown()


def _manual_importance(memory: Any) -> float:
    return float(getattr(getattr(memory, "settings", None), "manual_importance", 0.8))


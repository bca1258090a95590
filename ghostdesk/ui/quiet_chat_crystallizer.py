"""Crystallization when a chat goes quiet: what the chat taught is put into memory.

A chat with no activity for `IDLE_CRYSTALLIZE_MS` is quiet. Crystallizing runs the chat model,
so it runs on a pool thread, and only while no reply is being written (the model has one
lane): if one is, the timer looks again later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from ghostdesk.ui.workers import WorkFailed, call_in_background

if TYPE_CHECKING:
    from ghostdesk.ui.main_window import MainWindow

log = logging.getLogger("ghostdesk.ui")

IDLE_CRYSTALLIZE_MS = 5 * 60_000
"""A chat this long without activity is quiet: what it taught is put into memory."""


class QuietChatCrystallizer(QObject):
    """Watches the chat for quiet and crystallizes it. `timer` is the idle timer; `finished`
    carries the Crystallization (None when nothing was crystallized or it failed)."""

    finished = Signal(object)

    def __init__(self, window: MainWindow, memory: Callable[[], Any],
                 announce: Callable[[Any], None], parent: QObject | None = None) -> None:
        """`memory()` is the open MemoryService, or None while memory is unavailable;
        `announce(result)` tells the user what was remembered."""
        super().__init__(parent)
        self.window = window
        self._memory = memory
        self._announce = announce
        self._running = False
        self._closed = False
        self.timer = QTimer(self, singleShot=True, interval=IDLE_CRYSTALLIZE_MS)
        self.timer.timeout.connect(self._on_timer_timeout)

    def note_activity(self) -> None:
        """Something happened in the chat: it is not quiet (yet)."""
        if self._memory() is not None and self.window.current_conversation_id is not None:
            self.timer.start()

    def stop(self) -> None:
        """A reply is being written: the chat is not quiet."""
        self.timer.stop()

    def close(self) -> None:
        """No more crystallizing; a run in flight finishes without a word."""
        self._closed = True
        self.timer.stop()

    def _on_timer_timeout(self) -> None:
        memory = self._memory()
        if memory is None or self._running or self._closed:
            return
        if self.window.is_replying:
            self.timer.start()  # the model is busy: look again later
            return
        cid, engine = self.window.current_conversation_id, self.window.engine
        if cid is None:
            return
        self._running = True
        call_in_background(lambda: memory.on_idle(cid, engine), self._on_done)

    def _on_done(self, result: Any) -> None:
        self._running = False
        if self._closed:
            return
        if isinstance(result, WorkFailed):
            log.warning("crystallizing a quiet chat failed: %s", result.error)
            result = None
        elif result is not None:
            self._announce(result)
        self.finished.emit(result)

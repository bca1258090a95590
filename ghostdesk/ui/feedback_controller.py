"""Saves feedback off the GUI thread, in click order, and keeps the chat's bubbles in step.

A click changes its button at once (the bar does that); the write to SQLite then runs on one
worker thread of its own, so writes keep the order of the clicks and the GUI thread never
waits on the disk. When a write fails, the reply's buttons go back to what is saved and the
error is shown. Reading a chat's feedback when it is opened is one small query and runs on
the GUI thread, like reading the chat itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from ghostdesk.core.feedback.records import CONFIRMED, FeedbackState
from ghostdesk.ui.workers import SerialWorker

if TYPE_CHECKING:
    from ghostdesk.core.feedback.ledger import RewardLedger
    from ghostdesk.ui.chat_view import ChatView

log = logging.getLogger("ghostdesk.ui")

ReportError = Callable[[BaseException, str], None]


class FeedbackController(QObject):
    """One per window. Test hooks: signals `saved`, `failed`, `signals_changed`."""

    saved = Signal(int)
    """A reply's feedback was written (carries its message id)."""
    failed = Signal(int, object)
    """(message id, error): a write failed and the reply shows its saved feedback again."""
    signals_changed = Signal()
    """Implicit signals were added, confirmed or dismissed (the Feedback view refreshes)."""

    def __init__(
        self,
        ledger: RewardLedger,
        chat_view: ChatView,
        report_error: ReportError,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.ledger = ledger
        self.chat_view = chat_view
        self._report_error = report_error
        # One thread: writes happen in the order of the clicks, never two at once.
        self._writer = SerialWorker("ghostdesk-feedback", self)
        self._latest: dict[int, int] = {}
        self._in_flight: dict[int, int] = {}
        self._next = 0
        self._closed = False

    # -- actions ---------------------------------------------------------------------------

    def rate(self, message_id: int, kind: str, on: bool) -> None:
        ledger = self.ledger
        self._write(message_id, lambda: ledger.rate(message_id, kind, on=on), "saving your rating")

    def set_text(self, message_id: int, which: str, text: str) -> None:
        """Save a comment or a better reply ("" removes it)."""
        ledger = self.ledger
        setter = ledger.set_comment if which == "comment" else ledger.set_better_reply
        self._write(message_id, lambda: setter(message_id, text), "saving your feedback")

    def decide(self, message_id: int, event_id: int, status: str) -> None:
        """Confirm or dismiss an implicit signal."""
        ledger = self.ledger

        def write() -> FeedbackState:
            (ledger.confirm if status == CONFIRMED else ledger.dismiss)(event_id)
            return ledger.state_for([message_id])[message_id]

        self._write(message_id, write, "saving your answer about a signal", signals=True)

    def check_abandonment(
        self, abandon_after_s: float, activity: Mapping[int, datetime] | None = None
    ) -> None:
        """Look for replies the user left (in the background, after pending writes)."""
        ledger = self.ledger
        known = dict(activity or {})

        def check() -> list[Any]:
            return ledger.evaluate_abandonment(abandon_after_s=abandon_after_s, activity=known)

        self._submit(check, self._on_abandonment_checked)

    # -- reading ---------------------------------------------------------------------------

    def load(self, message_ids: Iterable[int]) -> None:
        """Show the saved feedback of these replies (those with a write still in flight only
        remember it: the write's own result will show)."""
        ids = list(message_ids)
        if not ids or self._closed:
            return
        try:
            states = self.ledger.state_for(ids)
        except Exception as err:
            self._report_error(err, "reading feedback")
            return
        settled = {mid: s for mid, s in states.items() if not self._in_flight.get(mid)}
        busy = {mid: s for mid, s in states.items() if self._in_flight.get(mid)}
        self.chat_view.set_feedback(settled)
        self.chat_view.set_feedback(busy, show=False)

    @property
    def busy(self) -> bool:
        return any(self._in_flight.values())

    # -- plumbing --------------------------------------------------------------------------

    def _write(
        self,
        message_id: int,
        write: Callable[[], FeedbackState],
        context: str,
        signals: bool = False,
    ) -> None:
        if self._closed:
            return
        self._next += 1
        generation = self._latest[message_id] = self._next
        self._in_flight[message_id] = self._in_flight.get(message_id, 0) + 1

        def done(result: Any, error: BaseException | None) -> None:
            self._in_flight[message_id] -= 1
            latest = self._latest.get(message_id) == generation
            bubble = self.chat_view.bubble_for(message_id)
            if error is not None:
                if latest and bubble is not None and bubble.feedback is not None:
                    bubble.feedback.revert()
                self._report_error(error, context)
                self.failed.emit(message_id, error)
                return
            if bubble is not None:
                bubble.set_feedback(result, show=latest)
            self.saved.emit(message_id)
            if signals:
                self.signals_changed.emit()

        self._submit(write, done)

    def _submit(
        self, work: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None]
    ) -> None:
        self._writer.submit(work, on_done)

    def _on_abandonment_checked(self, events: Any, error: BaseException | None) -> None:
        if error is not None:
            log.warning("checking for abandoned replies failed: %s", error)
            return
        if not events:
            return
        self.load(e.message_id for e in events if self.chat_view.bubble_for(e.message_id))
        self.signals_changed.emit()

    def shutdown(self) -> None:
        """Finish the writes already asked for, then stop. Call before the database closes."""
        self._closed = True
        self._writer.shutdown()

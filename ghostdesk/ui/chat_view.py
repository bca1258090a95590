"""The conversation: a scrollable column of message bubbles that follows a streaming reply."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from ghostdesk.ui.message_bubble import MessageBubble

if TYPE_CHECKING:
    from ghostdesk.core.feedback.records import FeedbackState
    from ghostdesk.core.store.records import MessageRecord

_FOLLOW_SLACK_PX = 48


class ChatView(QScrollArea):
    """Shows one thread. Only the last reply carries Regenerate and the version browser."""

    regenerate_requested = Signal()
    version_step_requested = Signal(int, int)
    """(message id, -1 or +1): the user browsed to another version of that reply."""
    rating_requested = Signal(int, str, bool)
    """(message id, "up" | "down" | "laugh", on): a rating button was pressed."""
    text_feedback_requested = Signal(int, str)
    """(message id, "comment" | "better_reply")."""
    signal_decision_requested = Signal(int, int, str)
    """(message id, event id, "confirmed" | "dismissed")."""
    bubble_added = Signal(object)
    """A MessageBubble joined the view (memory hooks its Remember and recalled memories)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ChatView")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        content = _Column(objectName="ChatViewport")
        self._column = QVBoxLayout(content)
        self._column.setContentsMargins(24, 20, 24, 20)
        self._column.setSpacing(12)
        self.empty_label = QLabel(objectName="EmptyState", alignment=Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self._column.addWidget(self.empty_label, 1)
        self._column.addStretch(0)
        self.setWidget(content)

        self._bubbles: list[MessageBubble] = []
        self.streaming_bubble: MessageBubble | None = None
        self._can_regenerate = True
        self._regenerate_reason = ""
        self._chat_idle = True
        self._follow = True
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range_changed)
        bar.valueChanged.connect(self._on_value_changed)
        self.set_empty_text("")

    # -- content ----------------------------------------------------------------------------

    def bubbles(self) -> list[MessageBubble]:
        return list(self._bubbles)

    def last_bubble(self) -> MessageBubble | None:
        return self._bubbles[-1] if self._bubbles else None

    def last_reply(self) -> MessageBubble | None:
        """The last bubble if it is a saved companion reply."""
        last = self.last_bubble()
        if last is None or last.role != "assistant" or last is self.streaming_bubble:
            return None
        return last

    def bubble_for(self, message_id: int) -> MessageBubble | None:
        for bubble in self._bubbles:
            if bubble.message_id == message_id:
                return bubble
        return None

    def set_feedback(self, states: dict[int, FeedbackState], *, show: bool = True) -> None:
        """Show each reply's saved feedback (replies not in `states` are left as they are)."""
        for bubble in self._bubbles:
            state = states.get(bubble.message_id) if bubble.message_id is not None else None
            if state is not None:
                bubble.set_feedback(state, show=show)

    def set_empty_text(self, text: str) -> None:
        self.empty_label.setText(text)
        self.empty_label.setVisible(not self._bubbles)

    def clear(self) -> None:
        for bubble in self._bubbles:
            row = bubble.parentWidget()
            self._column.removeWidget(row)
            row.deleteLater()
        self._bubbles.clear()
        self.streaming_bubble = None
        self.empty_label.setVisible(True)

    def show_thread(self, messages: Sequence[MessageRecord], persona_name: str) -> None:
        self.clear()
        for record in messages:
            if record.role in ("user", "assistant"):
                self._append(MessageBubble(record.role, _author(record.role, persona_name), record))
        self._update_last()
        self.scroll_to_bottom()

    def add_message(self, record: MessageRecord, persona_name: str) -> MessageBubble:
        bubble = self._append(
            MessageBubble(record.role, _author(record.role, persona_name), record)
        )
        self._update_last()
        self.scroll_to_bottom()
        return bubble

    def begin_reply(self, persona_name: str, parent_id: int | None) -> MessageBubble:
        """Drop what followed `parent_id` (the version being replaced) and add an empty
        companion bubble to stream into."""
        if parent_id is not None:
            ids = [b.message_id for b in self._bubbles]
            if parent_id in ids:
                for bubble in self._bubbles[ids.index(parent_id) + 1 :]:
                    self._remove(bubble)
        bubble = self._append(MessageBubble("assistant", persona_name))
        bubble.set_streaming(True)
        self.streaming_bubble = bubble
        self._update_last()
        self.scroll_to_bottom()
        return bubble

    def finish_reply(self, record: MessageRecord | None) -> None:
        """The streamed reply is saved (`record`), or failed before it could be (None)."""
        bubble = self.streaming_bubble
        self.streaming_bubble = None
        if bubble is None:
            return
        if record is None:
            if not bubble.text():
                self._remove(bubble)
            else:
                bubble.set_streaming(False)
        else:
            bubble.set_streaming(False)
            bubble.set_record(record)
        self._update_last()

    def set_actions_enabled(
        self, can_regenerate: bool, reason: str = "", chat_idle: bool = True
    ) -> None:
        """Whether the last reply may be regenerated now (a model is ready and idle), and
        whether this chat is idle (no reply is being written into it), which its version
        browser and the "Get a reply" offer need."""
        self._can_regenerate, self._regenerate_reason = can_regenerate, reason
        self._chat_idle = chat_idle
        self._update_last()

    def _update_last(self) -> None:
        last = self.last_bubble()
        for bubble in self._bubbles:
            is_last = bubble is last and bubble is not self.streaming_bubble
            if bubble.role == "user":
                is_last = is_last and self._chat_idle
            bubble.set_last(is_last, self._can_regenerate, self._regenerate_reason)
            if is_last:
                bubble.set_versions_enabled(self._chat_idle)
        self.empty_label.setVisible(not self._bubbles)

    def _append(self, bubble: MessageBubble) -> MessageBubble:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        if bubble.role == "user":
            layout.addStretch(1)
            layout.addWidget(bubble)
        else:
            layout.addWidget(bubble)
            layout.addStretch(1)
        bubble.regenerate_clicked.connect(self.regenerate_requested)
        bubble.version_step_clicked.connect(
            lambda delta, b=bubble: self._on_bubble_version_step_clicked(b, delta)
        )
        bubble.feedback_rated.connect(
            lambda kind, on, b=bubble: self._on_bubble_feedback_rated(b, kind, on)
        )
        bubble.feedback_text_requested.connect(
            lambda which, b=bubble: self._on_bubble_feedback_text_requested(b, which)
        )
        bubble.feedback_signal_decided.connect(
            lambda event_id, status, b=bubble: self._on_bubble_feedback_signal_decided(
                b, event_id, status
            )
        )
        bubble.fit_width(self._bubble_width())
        # Insert before the trailing stretch.
        self._column.insertWidget(self._column.count() - 1, row)
        row.show()  # now, not on the next event-loop pass, so state reads back at once
        self._bubbles.append(bubble)
        self.empty_label.setVisible(False)
        self.bubble_added.emit(bubble)
        return bubble

    def _remove(self, bubble: MessageBubble) -> None:
        row = bubble.parentWidget()
        self._column.removeWidget(row)
        row.deleteLater()
        self._bubbles.remove(bubble)
        if bubble is self.streaming_bubble:
            self.streaming_bubble = None

    def _on_bubble_version_step_clicked(self, bubble: MessageBubble, delta: int) -> None:
        if bubble.message_id is not None:
            self.version_step_requested.emit(bubble.message_id, delta)

    def _on_bubble_feedback_rated(self, bubble: MessageBubble, kind: str, on: bool) -> None:
        if bubble.message_id is not None:
            self.rating_requested.emit(bubble.message_id, kind, on)

    def _on_bubble_feedback_text_requested(self, bubble: MessageBubble, which: str) -> None:
        if bubble.message_id is not None:
            self.text_feedback_requested.emit(bubble.message_id, which)

    def _on_bubble_feedback_signal_decided(
        self, bubble: MessageBubble, event_id: int, status: str
    ) -> None:
        if bubble.message_id is not None:
            self.signal_decision_requested.emit(bubble.message_id, event_id, status)

    # -- streaming text ---------------------------------------------------------------------

    def set_streaming_text(self, text: str) -> None:
        if self.streaming_bubble is not None:
            self.streaming_bubble.set_text(text)

    # -- geometry ---------------------------------------------------------------------------

    def _bubble_width(self) -> int:
        available = self.viewport().width() - 48
        return max(240, min(int(available * 0.86), 900))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        width = self._bubble_width()
        for bubble in self._bubbles:
            bubble.fit_width(width)

    def scroll_to_bottom(self) -> None:
        self._follow = True
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    @property
    def is_following(self) -> bool:
        return self._follow

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(maximum)

    def _on_value_changed(self, value: int) -> None:
        # Reading back up stops the view from jumping to new text; reaching the end resumes.
        self._follow = value >= self.verticalScrollBar().maximum() - _FOLLOW_SLACK_PX


class _Column(QWidget):
    """The scrolled column. Its height is the height its bubbles need at its width.

    A word-wrapped label's minimum height is its height at a narrow guessed width, and a
    column's minimum is the sum of those: for a long chat far more than the bubbles take at
    the real width, which QScrollArea kept as blank space below the last bubble."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(super().minimumSizeHint().width(), 0)


def _author(role: str, persona_name: str) -> str:
    return "You" if role == "user" else persona_name

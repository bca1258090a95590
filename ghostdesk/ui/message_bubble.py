"""One message in the chat: author, text (Markdown for the companion), and its actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ghostdesk.core.feedback.records import FeedbackState
from ghostdesk.ui.feedback_bar import FeedbackBar
from ghostdesk.ui.markdown_body import MarkdownBody
from ghostdesk.ui.recalled_memories import RecalledMemories

if TYPE_CHECKING:
    from ghostdesk.core.store.records import MessageRecord

_H_PADDING = 14 * 2 + 4


class MessageBubble(QFrame):
    """A user or companion message. A companion bubble can be streamed into with set_text."""

    regenerate_clicked = Signal()
    version_step_clicked = Signal(int)
    """-1 for the previous version, +1 for the next."""
    copied = Signal()
    feedback_rated = Signal(str, bool)
    """(kind, on): 👍 / 👎 / 😂 pressed; the buttons already show it."""
    feedback_text_requested = Signal(str)
    """"comment" or "better_reply"."""
    feedback_signal_decided = Signal(int, str)
    """(event id, "confirmed" or "dismissed")."""
    remember_requested = Signal()
    """"Remember this": the message should become a memory."""

    def __init__(
        self,
        role: str,
        author: str,
        record: MessageRecord | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.role = role
        self.record = record
        self._text = ""
        self.setObjectName("Bubble")
        self.setProperty("role", role)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)

        self.author_label = QLabel(author, objectName="BubbleAuthor")
        self.body = MarkdownBody(markdown=role == "assistant")
        self.stopped_marker = QLabel("stopped", objectName="StoppedMarker")
        self.stopped_marker.setToolTip("You stopped this reply before it was finished.")
        self.stopped_marker.setVisible(False)
        self.context_note = QLabel(objectName="ContextNote")
        self.context_note.setVisible(False)
        self.copy_button = self._action_button("Copy", "Copy this reply")
        self.copy_button.clicked.connect(self._on_copy_clicked)
        self.regenerate_button = self._action_button("Regenerate", "Write another version")
        self.regenerate_button.clicked.connect(self.regenerate_clicked)
        self.previous_version_button = self._action_button("‹", "Previous version")
        self.previous_version_button.clicked.connect(lambda: self.version_step_clicked.emit(-1))
        self.version_label = QLabel(objectName="BubbleMeta")
        self.next_version_button = self._action_button("›", "Next version")
        self.next_version_button.clicked.connect(lambda: self.version_step_clicked.emit(1))
        self.remember_button = self._action_button(
            "Remember", "Remember this: keep it as a memory the companion can recall"
        )
        self.remember_button.setObjectName("RememberButton")
        self.remember_button.clicked.connect(self.remember_requested)
        self.remember_button.setVisible(False)  # until memory is known to be on
        self._max_width = 0

        # Feedback: companion replies only (a user's own message is not rated).
        self.feedback: FeedbackBar | None = None
        if role == "assistant":
            self.feedback = FeedbackBar()
            self.feedback.rating_changed.connect(self.feedback_rated)
            self.feedback.text_requested.connect(self.feedback_text_requested)
            self.feedback.signal_decided.connect(self.feedback_signal_decided)
        # The memories recalled for a reply, under it (MemoryController fills it).
        self.recalled = RecalledMemories() if role == "assistant" else None

        footer = QHBoxLayout()
        footer.setContentsMargins(0, 0, 0, 0)
        footer.setSpacing(2)
        if self.feedback is not None:
            footer.addWidget(self.feedback)
        footer.addWidget(self.stopped_marker)
        footer.addWidget(self.context_note)
        footer.addStretch(1)
        for w in (
            self.previous_version_button,
            self.version_label,
            self.next_version_button,
            self.regenerate_button,
            self.copy_button,
        ):
            footer.addWidget(w)
        self.footer = QWidget()
        self.footer.setLayout(footer)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 8, 14, 6)
        layout.setSpacing(4)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(self.author_label)
        header.addStretch(1)
        header.addWidget(self.remember_button)
        layout.addLayout(header)
        layout.addWidget(self.body)
        if self.feedback is not None:
            layout.addWidget(self.feedback.chips)
        if self.recalled is not None:
            layout.addWidget(self.recalled)
        layout.addWidget(self.footer)

        self.set_versions(1, 1)
        self.set_last(False)
        self.copy_button.setVisible(role == "assistant")
        self.footer.setVisible(role == "assistant")
        self._copied_timer = QTimer(self, singleShot=True, interval=1500)
        self._copied_timer.timeout.connect(lambda: self.copy_button.setText("Copy"))
        if record is not None:
            self.set_record(record)

    def _action_button(self, text: str, tip: str) -> QToolButton:
        button = QToolButton(objectName="BubbleAction", text=text)
        button.setToolTip(tip)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        return button

    # -- content ----------------------------------------------------------------------------

    @property
    def message_id(self) -> int | None:
        return self.record.id if self.record is not None else None

    def text(self) -> str:
        """The message as written (Markdown source for the companion)."""
        return self._text

    def set_text(self, text: str) -> None:
        self._text = text
        self.body.set_text(text)

    def set_record(self, record: MessageRecord) -> None:
        self.record = record
        self.set_text(record.content)
        self.set_stopped(record.status == "stopped")
        self.set_dropped_turns(record.dropped_turns or 0)
        self.set_versions(record.version_index or 1, record.version_count or 1)
        self.setToolTip(_describe(record))
        if self.feedback is not None and self.feedback.message_id != record.id:
            self.feedback.set_state(FeedbackState(record.id))  # until the saved one is loaded

    def set_feedback(self, state: FeedbackState, *, show: bool = True) -> None:
        """The reply's saved feedback (see FeedbackBar.set_state)."""
        if self.feedback is not None:
            self.feedback.set_state(state, show=show)

    def set_memory_enabled(self, enabled: bool) -> None:
        """Memory is on: offer "Remember this" and show recalled memories."""
        self.remember_button.setVisible(enabled)
        if self.recalled is not None:
            self.recalled.set_memory_enabled(enabled)
        if self._max_width:
            self.fit_width(self._max_width)

    def set_stopped(self, stopped: bool) -> None:
        self.stopped_marker.setVisible(stopped)

    @property
    def is_stopped(self) -> bool:
        return not self.stopped_marker.isHidden()

    def set_dropped_turns(self, count: int) -> None:
        if count > 0:
            word = "message" if count == 1 else "messages"
            self.context_note.setText(f"{count} earlier {word} left out to fit the context")
            self.context_note.setToolTip(
                "The conversation is longer than the model's context window, so the oldest "
                "messages were not part of the prompt for this reply."
            )
        self.context_note.setVisible(count > 0)

    # -- actions ----------------------------------------------------------------------------

    def set_last(self, last: bool, can_regenerate: bool = True, reason: str = "") -> None:
        """Only the last reply can be regenerated or browsed by version. A user message that
        is last has no reply (it failed or was stopped before a word): it offers one."""
        self.regenerate_button.setVisible(last)
        self.regenerate_button.setEnabled(can_regenerate)
        if self.role == "user":
            self.regenerate_button.setText("Get a reply")
            self.footer.setVisible(last)
        default_tip = "Write another version" if self.role == "assistant" else "Answer this"
        self.regenerate_button.setToolTip(reason or default_tip)
        self._last = last
        self._update_version_browser()

    def set_versions(self, index: int, count: int) -> None:
        self.version_index, self.version_count = index, count
        self.version_label.setText(f"{index}/{count}")
        self._update_version_browser()

    def set_versions_enabled(self, enabled: bool) -> None:
        self.previous_version_button.setEnabled(enabled and self.version_index > 1)
        self.next_version_button.setEnabled(enabled and self.version_index < self.version_count)

    def _update_version_browser(self) -> None:
        show = getattr(self, "_last", False) and self.version_count > 1
        for w in (self.previous_version_button, self.version_label, self.next_version_button):
            w.setVisible(show)
        self.set_versions_enabled(True)

    def set_streaming(self, streaming: bool) -> None:
        """While a reply streams, its actions wait until it is saved."""
        self.footer.setVisible(not streaming and self.role == "assistant")
        self.remember_button.setEnabled(not streaming)  # nothing saved to remember yet
        self.author_label.setText(
            self.author_label.text().removesuffix(" …") + (" …" if streaming else "")
        )

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self._text)
        self.copy_button.setText("Copied")
        self._copied_timer.start()
        self.copied.emit()

    # -- size -------------------------------------------------------------------------------

    def fit_width(self, max_width: int) -> None:
        """Companion replies use the full column; user messages shrink to their text."""
        self._max_width = max_width
        if self.role == "assistant":
            self.setFixedWidth(max_width)
            return
        metrics = QFontMetrics(self.font())
        lines = self._text.splitlines() or [""]
        text_width = max(metrics.horizontalAdvance(line) for line in lines)
        author_width = metrics.horizontalAdvance(self.author_label.text())
        if not self.remember_button.isHidden():
            author_width += self.remember_button.sizeHint().width() + 8
        wanted = max(text_width, author_width, 40) + _H_PADDING
        self.setFixedWidth(min(max_width, wanted))


def _describe(record: MessageRecord) -> str:
    when = record.created_at.astimezone().strftime("%Y-%m-%d %H:%M") if record.created_at else ""
    if record.role != "assistant":
        return when
    lines = [f"{record.model_name or 'unknown model'} · {when}"]
    if record.completion_tokens:
        speed = f" · {record.tokens_per_second:.1f} tok/s" if record.tokens_per_second else ""
        lines.append(f"{record.completion_tokens} tokens{speed}")
    return "\n".join(lines)

"""The message box: Enter sends, Shift+Enter starts a new line; Send turns into Stop."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

_MAX_LINES = 8


class ComposerEdit(QPlainTextEdit):
    """A text box that grows with its text up to a few lines."""

    submitted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ComposerEdit")
        self.setTabChangesFocus(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.document().documentLayout().documentSizeChanged.connect(
            lambda _size: self.updateGeometry()
        )
        self.textChanged.connect(self.updateGeometry)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            mods = event.modifiers()
            if mods & Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
                return
            if not mods & (
                Qt.KeyboardModifier.ControlModifier
                | Qt.KeyboardModifier.AltModifier
                | Qt.KeyboardModifier.MetaModifier
            ):
                self.submitted.emit()
                return
        super().keyPressEvent(event)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        line = self.fontMetrics().lineSpacing()
        lines = max(1, min(_MAX_LINES, int(self.document().size().height())))
        margins = self.contentsMargins()
        height = (
            lines * line
            + 2 * int(self.document().documentMargin())
            + margins.top()
            + margins.bottom()
        )
        return QSize(super().sizeHint().width(), height)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return self.sizeHint()


class Composer(QWidget):
    """Emits send_requested with the typed text, or stop_requested while a reply streams."""

    send_requested = Signal(str)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Composer")
        self.edit = ComposerEdit()
        self.edit.setPlaceholderText(
            "Write a message…  (Enter to send, Shift+Enter for a new line)"
        )
        self.send_button = QPushButton("Send", objectName="PrimaryButton")
        self.send_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.send_button.setMinimumWidth(84)
        self.streaming = False
        self._can_send = True
        self._blocked_reason = ""

        frame = QFrame(objectName="ComposerFrame")
        inner = QHBoxLayout(frame)
        inner.setContentsMargins(12, 6, 6, 6)
        inner.setSpacing(8)
        inner.addWidget(self.edit, 1)
        inner.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 8, 24, 14)
        outer.addWidget(frame)

        self.edit.submitted.connect(self._on_edit_submitted)
        self.edit.textChanged.connect(self._update_button)
        self.send_button.clicked.connect(self._on_send_button_clicked)
        self._update_button()

    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)

    def clear(self) -> None:
        self.edit.clear()

    def set_send_allowed(self, allowed: bool, reason: str = "") -> None:
        """Whether a message can be sent now; `reason` becomes the button's tooltip."""
        self._can_send, self._blocked_reason = allowed, reason
        self._update_button()

    def set_streaming(self, streaming: bool) -> None:
        self.streaming = streaming
        self.send_button.setProperty("streaming", streaming)
        self.send_button.style().unpolish(self.send_button)
        self.send_button.style().polish(self.send_button)
        self._update_button()

    def _update_button(self) -> None:
        if self.streaming:
            self.send_button.setText("Stop")
            self.send_button.setEnabled(True)
            self.send_button.setToolTip("Stop the reply; what is written so far is kept")
            return
        self.send_button.setText("Send")
        has_text = bool(self.text().strip())
        self.send_button.setEnabled(self._can_send and has_text)
        if not self._can_send:
            self.send_button.setToolTip(self._blocked_reason)
        else:
            self.send_button.setToolTip("Send (Enter)" if has_text else "Write a message first")

    def _on_edit_submitted(self) -> None:
        if self.streaming:
            return
        self._request_send()

    def _on_send_button_clicked(self) -> None:
        if self.streaming:
            self.stop_requested.emit()
        else:
            self._request_send()

    def _request_send(self) -> None:
        text = self.text().strip()
        if text and self._can_send:
            self.send_requested.emit(text)

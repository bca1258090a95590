"""Writing about a reply: a short comment, or the better reply the user would have liked."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

_TEXTS = {
    "comment": (
        "Comment on this reply",
        "A short note about this reply, for you and for later training runs.",
    ),
    "better_reply": (
        "Write a better reply",
        "Rewrite the reply the way you would have liked it. GhostDesk learns from it "
        "directly: it becomes a training example of what to say here.",
    ),
}


class TextFeedbackDialog(QDialog):
    """Window-modal, non-blocking (`open()`). Emits `text_saved` with the text ("" removes)."""

    text_saved = Signal(str)

    def __init__(
        self,
        which: str,
        current: str | None,
        reply_text: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.which = which
        title, explanation = _TEXTS[which]
        self.setWindowTitle(title)
        self.resize(560, 320 if which == "better_reply" else 200)
        hint = QLabel(explanation, objectName="FieldHint", wordWrap=True)
        self.edit = QPlainTextEdit()
        self.edit.setAccessibleName(title)
        if which == "better_reply":
            # Start from the reply itself: most better replies are an edit of it.
            self.edit.setPlainText(current if current else reply_text)
        else:
            self.edit.setPlaceholderText("What did you think of this reply?")
            self.edit.setPlainText(current or "")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        self.remove_button = QPushButton("Remove")
        buttons.addButton(self.remove_button, QDialogButtonBox.ButtonRole.DestructiveRole)
        self.remove_button.setVisible(bool(current))  # after addButton, which shows it
        buttons.accepted.connect(self._on_save_clicked)
        buttons.rejected.connect(self.reject)
        self.remove_button.clicked.connect(self._on_remove_clicked)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.edit, 1)
        layout.addWidget(buttons)
        self.edit.setFocus()

    def _on_save_clicked(self) -> None:
        self.text_saved.emit(self.edit.toPlainText().strip())
        self.accept()

    def _on_remove_clicked(self) -> None:
        self.text_saved.emit("")
        self.accept()

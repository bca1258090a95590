"""Small dialogs for memories: write or change one, and the "Forget this for good?" question.

Both are window-modal and non-blocking (`open()`), so the chat keeps painting and a test can
answer them like a user would.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

_PREVIEW_CHARS = 300


class MemoryTextDialog(QDialog):
    """Write a new memory or change one. Emits `text_saved` with the text (never empty)."""

    text_saved = Signal(str)

    def __init__(self, title: str, hint: str, text: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(520, 220)
        self.edit = QPlainTextEdit()
        self.edit.setAccessibleName(title)
        self.edit.setPlaceholderText("For example: The user's sister Mei lives in Chengdu.")
        self.edit.setPlainText(text)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        buttons.accepted.connect(self._on_save_clicked)
        buttons.rejected.connect(self.reject)
        self.edit.textChanged.connect(self._update_save)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(hint, objectName="FieldHint", wordWrap=True))
        layout.addWidget(self.edit, 1)
        layout.addWidget(buttons)
        self._update_save()
        self.edit.setFocus()

    def _update_save(self) -> None:
        self.save_button.setEnabled(bool(self.edit.toPlainText().strip()))

    def _on_save_clicked(self) -> None:
        text = self.edit.toPlainText().strip()
        if text:
            self.text_saved.emit(text)
            self.accept()


def ask_to_forget(parent: QWidget, text: str, on_yes: Callable[[], None]) -> QMessageBox:
    """Ask "Forget this for good?" about a memory; `on_yes` runs only after Forget."""
    preview = text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"
    box = QMessageBox(parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Forget memory")
    box.setText("Forget this for good?")
    box.setInformativeText(
        f"“{preview}”\n\nIt is deleted from memory and from every reply that used it. "
        "This cannot be undone (Archive keeps it out of recall but restorable)."
    )
    forget = box.addButton("Forget", QMessageBox.ButtonRole.DestructiveRole)
    keep = box.addButton("Keep", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep)
    box.setEscapeButton(keep)

    def answered(button: object) -> None:
        if button is forget:
            on_yes()

    box.buttonClicked.connect(answered)
    box.forget_button = forget  # type: ignore[attr-defined]  (test hook)
    box.keep_button = keep  # type: ignore[attr-defined]
    box.open()
    return box

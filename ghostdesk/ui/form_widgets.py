"""Small building blocks of the settings forms: a notice in the banner look, a combo box of
(value, text) choices, and a hint line under a field."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel


def notice_frame(kind: str) -> tuple[QFrame, QLabel]:
    """A frame in the banner look (styled by the theme), holding a label and maybe buttons."""
    frame = QFrame(objectName="Banner")
    frame.setProperty("kind", kind)
    frame.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
    label = QLabel(wordWrap=True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    row = QHBoxLayout(frame)
    row.setContentsMargins(10, 8, 10, 8)
    row.addWidget(label, 1)
    frame.setVisible(False)
    return frame, label


def choice_combo(choices: tuple[tuple[str, str], ...]) -> QComboBox:
    """A combo box showing each choice's text and holding its value as the item data."""
    combo = QComboBox()
    for value, text in choices:
        combo.addItem(text, value)
    return combo


def set_choice(combo: QComboBox, value: str) -> None:
    """Select the item holding `value` (the first item for a value it doesn't hold)."""
    combo.setCurrentIndex(max(0, combo.findData(value)))


def hint_label(text: str = "") -> QLabel:
    """A muted, selectable line under a field."""
    label = QLabel(text, objectName="FieldHint", wordWrap=True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label

"""What the welcome wizard's pages share: their ids (the order Next walks), the base page that
finds its wizard through Qt, and the selectable, wrapping label they are written with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWizardPage

if TYPE_CHECKING:
    from ghostdesk.ui.first_run import FirstRunWizard

PAGE_WELCOME, PAGE_MODEL, PAGE_DOWNLOAD, PAGE_PERSONA = range(4)


def wizard_label(text: str = "", name: str | None = None) -> QLabel:
    """A wrapping label whose text can be selected; `name` is its style-sheet object name."""
    label = QLabel(text, wordWrap=True)
    if name:
        label.setObjectName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class WizardPage(QWizardPage):
    """A page that reaches its wizard through Qt (`wizard()`), not a Python attribute: a
    page <-> wizard reference cycle would leave the wizard to Python's cyclic collector,
    which can delete it at any moment, even inside one of its own Qt callbacks."""

    def _owner(self) -> FirstRunWizard | None:
        return self.wizard()  # type: ignore[return-value]

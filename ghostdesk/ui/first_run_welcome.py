"""The welcome wizard's first page: what GhostDesk is, what this computer has, and which
model size suits it (the detection runs in the background; Next waits for it)."""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout

from ghostdesk.core.setup.hardware import HardwareInfo, Recommendation
from ghostdesk.ui.first_run_page import WizardPage, wizard_label


class WelcomePage(WizardPage):
    """Says what GhostDesk is and what this computer has; Next waits for the detection."""

    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Welcome to GhostDesk")
        self.setSubTitle("A companion that lives on this computer. Nothing you say leaves it.")
        self.hardware_label = wizard_label("Looking at this computer…")
        self.recommendation_label = wizard_label()
        self.notes_label = wizard_label(name="FieldHint")
        layout = QVBoxLayout(self)
        layout.addWidget(wizard_label(
            "GhostDesk runs a language model on your own hardware. Let's choose one that suits "
            "this computer, and give your companion a name. You can skip this and change "
            "everything later in Settings."))
        layout.addSpacing(8)
        layout.addWidget(self.hardware_label)
        layout.addWidget(self.recommendation_label)
        layout.addWidget(self.notes_label)
        layout.addStretch(1)

    def show_detection(self, hw: HardwareInfo | None, rec: Recommendation | None,
                       error: str = "") -> None:
        if hw is None or rec is None:
            self.hardware_label.setText(f"The hardware could not be read ({error}).")
            self.recommendation_label.setText("The bundled model works everywhere.")
        else:
            self.hardware_label.setText("\n".join(hw.summary_lines()))
            self.recommendation_label.setText(rec.reason)
            self.notes_label.setText("\n".join(rec.notes))
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        owner = self._owner()
        return owner is not None and owner.detection_done

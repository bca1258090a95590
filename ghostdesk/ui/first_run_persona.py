"""The welcome wizard's last page: the companion's name and who it is."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QLineEdit, QPlainTextEdit, QVBoxLayout

from ghostdesk.ui.first_run_page import WizardPage, wizard_label


class PersonaPage(WizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Your companion")
        self.setSubTitle("Give it a name and say who it is. You can change both in Settings → "
                         "Persona.")
        self.name_edit = QLineEdit()
        self.name_edit.setMaxLength(100)
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setMinimumHeight(120)
        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(wizard_label("Who it is ({name} is replaced by its name):"))
        layout.addWidget(self.prompt_edit, 1)
        self.name_edit.textChanged.connect(self._on_name_edit_text_changed)

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        if not self.name_edit.text():
            initial, persona = self._owner().initial, self._owner().services.settings.persona
            self.name_edit.setText(initial.persona_name or persona.name)
            self.prompt_edit.setPlainText(initial.system_prompt or persona.system_prompt)

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        return bool(self.name_edit.text().strip())

    def nextId(self) -> int:  # noqa: N802 (Qt override)
        return -1

    def _on_name_edit_text_changed(self, _text: str) -> None:
        self.completeChanged.emit()

"""The welcome wizard's model page: the bundled model, a GGUF file on disk, or a download
from the curated catalogue (recommended models first, with size, licence and free space)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
)

from ghostdesk.core.models.catalogue import CatalogueModel, format_size
from ghostdesk.core.models.part_file import free_bytes
from ghostdesk.core.setup.first_run import models_dir
from ghostdesk.ui.first_run_page import PAGE_DOWNLOAD, PAGE_PERSONA, WizardPage, wizard_label

BUNDLED_TEXT = ("Gemma 3 270M, included with GhostDesk: starts at once on any computer. "
                "Its answers are simple; you can switch to a larger model at any time.")


class ModelPage(WizardPage):
    """Bundled model, a file on disk, or a catalogue download."""

    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Choose a model")
        self.setSubTitle("The model is the companion's mind. Bigger models understand more but "
                         "need more memory.")
        self.bundled_radio = QRadioButton("Use the small bundled model now")
        self.file_radio = QRadioButton("Use a GGUF model file on this computer")
        self.download_radio = QRadioButton("Download a model suited to this computer")
        self.group = QButtonGroup(self)
        for button in (self.bundled_radio, self.file_radio, self.download_radio):
            self.group.addButton(button)

        self.path_edit = QLineEdit(placeholderText="/path/to/model.gguf")
        self.path_edit.setClearButtonEnabled(True)
        self.browse_button = QPushButton("Browse…")
        file_row = QHBoxLayout()
        file_row.setContentsMargins(24, 0, 0, 0)
        file_row.addWidget(self.path_edit, 1)
        file_row.addWidget(self.browse_button)

        self.model_combo = QComboBox()
        self.model_info_label = wizard_label(name="FieldHint")
        self.model_info_label.setOpenExternalLinks(True)
        self.model_info_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextBrowserInteraction)
        download_box = QVBoxLayout()
        download_box.setContentsMargins(24, 0, 0, 0)
        download_box.addWidget(self.model_combo)
        download_box.addWidget(self.model_info_label)

        self.error_label = wizard_label(name="InlineError")
        self.error_label.setVisible(False)

        layout = QVBoxLayout(self)
        layout.addWidget(self.bundled_radio)
        bundled_hint = wizard_label(BUNDLED_TEXT, "FieldHint")
        bundled_hint.setContentsMargins(24, 0, 0, 0)
        layout.addWidget(bundled_hint)
        layout.addSpacing(6)
        layout.addWidget(self.file_radio)
        layout.addLayout(file_row)
        layout.addSpacing(6)
        layout.addWidget(self.download_radio)
        layout.addLayout(download_box)
        layout.addWidget(self.error_label)
        layout.addStretch(1)

        self.browse_button.clicked.connect(self._on_browse_button_clicked)
        self.path_edit.textEdited.connect(self._on_path_edit_text_edited)
        self.model_combo.currentIndexChanged.connect(self._on_model_combo_current_index_changed)
        self.group.buttonToggled.connect(self._on_group_button_toggled)
        self._filled = False

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        if self._filled:
            return
        self._filled = True
        wizard = self._owner()
        rec = wizard.recommendation
        self.model_combo.blockSignals(True)
        for model in wizard.offered_models():
            recommended = rec is not None and model in rec.models
            tier = wizard.catalogue.tier(model.tier).title
            text = model.label if recommended else f"{model.label}  ({tier})"
            self.model_combo.addItem(text, model.id)
        self.model_combo.blockSignals(False)
        initial = wizard.initial
        if initial.model_path:
            self.path_edit.setText(initial.model_path)
            self.file_radio.setChecked(True)
        elif rec is not None and rec.model is not None and not rec.prefer_bundled:
            self.download_radio.setChecked(True)
        else:
            self.bundled_radio.setChecked(True)
        self._show_model_info()
        self._sync_enabled()

    # -- what was chosen ----------------------------------------------------------------------

    def selected_model(self) -> CatalogueModel | None:
        model_id = self.model_combo.currentData()
        return self._owner().catalogue.get(model_id) if model_id else None

    def validatePage(self) -> bool:  # noqa: N802 (Qt override)
        self.error_label.setVisible(False)
        if self.file_radio.isChecked():
            path = Path(self.path_edit.text().strip()).expanduser()
            if not self.path_edit.text().strip() or not path.is_file():
                return self._fail("Choose an existing .gguf file, or pick another option.")
        if self.download_radio.isChecked() and self.selected_model() is None:
            return self._fail("Choose a model to download.")
        return True

    def nextId(self) -> int:  # noqa: N802 (Qt override)
        return PAGE_DOWNLOAD if self.download_radio.isChecked() else PAGE_PERSONA

    def _fail(self, text: str) -> bool:
        self.error_label.setText(text)
        self.error_label.setVisible(True)
        return False

    # -- slots --------------------------------------------------------------------------------

    def _on_browse_button_clicked(self) -> None:
        start = self.path_edit.text().strip() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a GGUF model", start, "GGUF models (*.gguf);;All files (*)")
        if path:
            self.path_edit.setText(path)
            self.file_radio.setChecked(True)

    def _on_path_edit_text_edited(self, _text: str) -> None:
        self.file_radio.setChecked(True)

    def _on_model_combo_current_index_changed(self, _index: int) -> None:
        self._show_model_info()

    def _on_group_button_toggled(self, _button: Any, _checked: bool) -> None:
        self._sync_enabled()
        self.error_label.setVisible(False)

    def _sync_enabled(self) -> None:
        self.path_edit.setEnabled(self.file_radio.isChecked())
        self.browse_button.setEnabled(self.file_radio.isChecked())
        self.model_combo.setEnabled(self.download_radio.isChecked())

    def _show_model_info(self) -> None:
        model = self.selected_model()
        if model is None:
            self.model_info_label.setText("No model in the catalogue suits this computer.")
            return
        folder = models_dir(self._owner().services.paths)
        free = free_bytes(folder)
        parts = [f"About {format_size(model.size_bytes)} from "
                 f'<a href="{model.page_url}">{model.repo_id}</a>.',
                 f'Licence: <a href="{model.licence_url or model.page_url}">{model.licence}</a>'
                 " (by downloading you accept it)."]
        if free is not None:
            enough = free > model.size_bytes * 1.02
            parts.append(f"{format_size(free)} free in {folder}"
                         + ("." if enough else ": not enough for this model."))
        if model.notes:
            parts.append(model.notes)
        self.model_info_label.setText(" ".join(parts))

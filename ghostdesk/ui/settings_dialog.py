"""Settings, in tabs: the model and its placement, how replies are sampled, the persona, and
training (ghostdesk/ui/training_pane.py, built when its tab is first shown)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.settings import DEFAULT_SYSTEM_PROMPT, Settings
from ghostdesk.ui.workers import WorkFailed, call_in_background

if TYPE_CHECKING:
    from ghostdesk.services import AppServices
    from ghostdesk.ui.training_pane import TrainingPane
    from ghostdesk.ui.training_session import TrainingSession

BUNDLED_DESCRIPTION = "The small bundled model (Gemma 3 270M): runs on any computer, no GPU needed."
_INT_MAX = 2_147_483_647


def describe_model_file(path: str) -> str:
    """One line about a GGUF file, read from its header. Reads the disk: call off the GUI
    thread. Returns "" when the inspection module is unavailable."""
    try:
        from ghostdesk.core.llm.gguf_info import read_model_info
    except ImportError:
        return ""
    return read_model_info(path).summary()


class SettingsDialog(QDialog):
    """Edits a copy of the settings; OK validates, saves through AppServices, and emits
    settings_saved(old, new). Nothing is saved while a value is invalid."""

    settings_saved = Signal(object, object)

    def __init__(
        self,
        services: AppServices,
        parent: QWidget | None = None,
        training: TrainingSession | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self.services = services
        self._original = copy.deepcopy(services.settings)
        self._info_request = 0
        self.saved_settings: Settings | None = None
        self.training = training
        self.training_pane: TrainingPane | None = None

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_model_tab(), "Model")
        self.tabs.addTab(self._build_sampling_tab(), "Replies")
        self.tabs.addTab(self._build_persona_tab(), "Persona")
        self._training_page: QWidget | None = None
        if training is not None:
            # Built on first show: it reads the whole feedback ledger and imports pyqtgraph.
            self._training_page = QWidget()
            QVBoxLayout(self._training_page).setContentsMargins(0, 0, 0, 0)
            self.tabs.addTab(self._training_page, "Training")
            self.tabs.currentChanged.connect(self._on_tabs_current_changed)

        self.error_label = QLabel(objectName="InlineError", wordWrap=True)
        self.error_label.setVisible(False)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self._load(self._original)

    # -- tabs -------------------------------------------------------------------------------

    def _build_model_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("Bundled small model")
        self.path_edit.setClearButtonEnabled(True)
        self.browse_button = QPushButton("Browse…")
        self.bundled_button = QPushButton("Use bundled model")
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.browse_button)
        row.addWidget(self.bundled_button)
        form.addRow("Model file", row)
        self.model_info_label = QLabel(objectName="ModelInfo", wordWrap=True)
        self.model_info_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("", self.model_info_label)

        self.n_ctx_spin = QSpinBox(minimum=256, maximum=1_048_576, singleStep=1024)
        self.n_ctx_spin.setSuffix(" tokens")
        self.n_ctx_spin.setToolTip("Older turns are left out of the prompt to stay inside it.")
        form.addRow("Context size", self.n_ctx_spin)

        self.gpu_auto_check = QCheckBox("Auto (as many as fit in free GPU memory)")
        self.gpu_layers_spin = QSpinBox(minimum=-1, maximum=999)
        self.gpu_layers_spin.setSpecialValueText("All layers")
        self.gpu_layers_spin.setToolTip("0 runs on the CPU only.")
        gpu_row = QHBoxLayout()
        gpu_row.addWidget(self.gpu_auto_check)
        gpu_row.addWidget(self.gpu_layers_spin)
        gpu_row.addStretch(1)
        form.addRow("GPU layers", gpu_row)

        self.threads_spin = QSpinBox(minimum=0, maximum=512)
        self.threads_spin.setSpecialValueText("Automatic")
        form.addRow("CPU threads", self.threads_spin)
        hint = QLabel(
            "Changes to the model are applied by reloading it in the background.",
            objectName="FieldHint",
            wordWrap=True,
        )
        form.addRow("", hint)
        # --- setup assistant (ghostdesk/ui/first_run.py) ------------------------------------
        self.setup_button = QPushButton("Setup assistant…")
        self.setup_button.setToolTip(
            "Look at this computer's hardware again and choose, or download, a suitable model."
        )
        self.setup_button.clicked.connect(self._on_setup_button_clicked)
        self.setup_wizard: QWidget | None = None
        form.addRow("", self.setup_button)
        # --- end of setup assistant ---------------------------------------------------------

        self.browse_button.clicked.connect(self._on_browse_button_clicked)
        self.bundled_button.clicked.connect(self._on_bundled_button_clicked)
        self.path_edit.editingFinished.connect(self._on_path_edit_editing_finished)
        self.gpu_auto_check.toggled.connect(self._on_gpu_auto_check_toggled)
        return page

    def _build_sampling_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.temperature_spin = _double(0.0, 5.0, 0.05, 2)
        self.temperature_spin.setToolTip("Higher is more varied, lower is more predictable.")
        form.addRow("Temperature", self.temperature_spin)
        self.top_p_spin = _double(0.01, 1.0, 0.01, 2)
        form.addRow("Top-p", self.top_p_spin)
        self.top_k_spin = QSpinBox(minimum=0, maximum=100_000)
        self.top_k_spin.setSpecialValueText("Off")
        form.addRow("Top-k", self.top_k_spin)
        self.min_p_spin = _double(0.0, 1.0, 0.01, 2)
        form.addRow("Min-p", self.min_p_spin)
        self.repeat_penalty_spin = _double(0.5, 2.0, 0.05, 2)
        form.addRow("Repeat penalty", self.repeat_penalty_spin)
        self.max_tokens_spin = QSpinBox(minimum=1, maximum=65_536, singleStep=64)
        self.max_tokens_spin.setSuffix(" tokens")
        form.addRow("Longest reply", self.max_tokens_spin)
        self.seed_spin = QSpinBox(minimum=-1, maximum=_INT_MAX)
        self.seed_spin.setSpecialValueText("Random")
        form.addRow("Seed", self.seed_spin)
        return page

    def _build_persona_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        form = QFormLayout()
        self.persona_name_edit = QLineEdit()
        self.persona_name_edit.setMaxLength(100)
        form.addRow("Name", self.persona_name_edit)
        layout.addLayout(form)
        layout.addWidget(
            QLabel(
                "System prompt (who the companion is; {name} is replaced by its name)",
                wordWrap=True,
            )
        )
        self.system_prompt_edit = QPlainTextEdit()
        self.system_prompt_edit.setMinimumHeight(160)
        layout.addWidget(self.system_prompt_edit, 1)
        self.restore_prompt_button = QPushButton("Restore default")
        self.restore_prompt_button.clicked.connect(self._on_restore_prompt_button_clicked)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.restore_prompt_button)
        layout.addLayout(row)
        return page

    # -- values -----------------------------------------------------------------------------

    def _load(self, s: Settings) -> None:
        self.path_edit.setText(s.model.path)
        self.n_ctx_spin.setValue(s.model.n_ctx)
        auto = s.model.n_gpu_layers == "auto"
        self.gpu_auto_check.setChecked(auto)
        self.gpu_layers_spin.setValue(0 if auto else int(s.model.n_gpu_layers))
        self.gpu_layers_spin.setEnabled(not auto)
        self.threads_spin.setValue(s.model.n_threads)
        self.temperature_spin.setValue(s.sampling.temperature)
        self.top_p_spin.setValue(s.sampling.top_p)
        self.top_k_spin.setValue(s.sampling.top_k)
        self.min_p_spin.setValue(s.sampling.min_p)
        self.repeat_penalty_spin.setValue(s.sampling.repeat_penalty)
        self.max_tokens_spin.setValue(s.sampling.max_tokens)
        self.seed_spin.setValue(s.sampling.seed)
        self.persona_name_edit.setText(s.persona.name)
        self.system_prompt_edit.setPlainText(s.persona.system_prompt)
        self._refresh_model_info()

    def edited_settings(self) -> Settings:
        """A new Settings from the fields (not validated)."""
        s = copy.deepcopy(self._original)
        path = self.path_edit.text().strip()
        s.model.path = str(Path(path).expanduser()) if path else ""
        s.model.n_ctx = self.n_ctx_spin.value()
        s.model.n_gpu_layers = (
            "auto" if self.gpu_auto_check.isChecked() else self.gpu_layers_spin.value()
        )
        s.model.n_threads = self.threads_spin.value()
        s.sampling.temperature = round(self.temperature_spin.value(), 4)
        s.sampling.top_p = round(self.top_p_spin.value(), 4)
        s.sampling.top_k = self.top_k_spin.value()
        s.sampling.min_p = round(self.min_p_spin.value(), 4)
        s.sampling.repeat_penalty = round(self.repeat_penalty_spin.value(), 4)
        s.sampling.max_tokens = self.max_tokens_spin.value()
        s.sampling.seed = self.seed_spin.value()
        s.persona.name = self.persona_name_edit.text().strip()
        s.persona.system_prompt = self.system_prompt_edit.toPlainText()
        if self.training_pane is not None:
            s.training = self.training_pane.edited_training()
        return s

    def accept(self) -> None:
        new = self.edited_settings()
        try:
            new.validate()
            if new.model.path and not Path(new.model.path).is_file():
                raise GhostDeskError(
                    f"The model file {new.model.path} does not exist.",
                    hint="Choose a .gguf file with Browse…, or use the bundled model.",
                )
            self.services.save_settings(new)
        except GhostDeskError as err:
            self.show_error(str(err))
            return
        self.saved_settings = new
        self.error_label.setVisible(False)
        super().accept()
        self.settings_saved.emit(self._original, new)

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(True)

    @property
    def error_text(self) -> str:
        return self.error_label.text() if not self.error_label.isHidden() else ""

    # -- model info -------------------------------------------------------------------------

    def _refresh_model_info(self) -> None:
        path = self.path_edit.text().strip()
        self._info_request += 1
        if not path:
            self.model_info_label.setText(BUNDLED_DESCRIPTION)
            return
        self.model_info_label.setText("Reading the model file…")
        request = self._info_request

        def read() -> tuple[int, str]:
            try:
                return request, describe_model_file(path)
            except GhostDeskError as err:
                return request, str(err)
            except Exception as err:  # a damaged file must not break the dialog
                return request, f"Could not read it: {err}"

        # A bound method: if the dialog is gone when the file is read, Qt drops the call.
        call_in_background(read, self._on_model_info_read)

    def _on_model_info_read(self, result: object) -> None:
        if isinstance(result, WorkFailed):  # not raised by read(); kept for completeness
            self.model_info_label.setText(f"Could not read it: {result.error}")
            return
        request, text = result  # type: ignore[misc]
        if request == self._info_request:  # else the path changed while the file was read
            self.model_info_label.setText(text)

    # -- slots ------------------------------------------------------------------------------

    def _on_browse_button_clicked(self) -> None:
        start = self.path_edit.text().strip() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a GGUF model", start, "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.path_edit.setText(path)
            self._refresh_model_info()

    def _on_bundled_button_clicked(self) -> None:
        self.path_edit.clear()
        self._refresh_model_info()

    def _on_path_edit_editing_finished(self) -> None:
        self._refresh_model_info()

    def _on_gpu_auto_check_toggled(self, checked: bool) -> None:
        self.gpu_layers_spin.setEnabled(not checked)

    def _on_restore_prompt_button_clicked(self) -> None:
        self.system_prompt_edit.setPlainText(DEFAULT_SYSTEM_PROMPT)

    # -- training ---------------------------------------------------------------------------

    def show_training(self) -> TrainingPane | None:
        """Switch to the Training tab (building it) and return its pane."""
        if self._training_page is not None:
            self.tabs.setCurrentWidget(self._training_page)
            self._build_training_pane()
        return self.training_pane

    def _on_tabs_current_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self._training_page:
            self._build_training_pane()

    def _build_training_pane(self) -> None:
        if self.training_pane is not None or self.training is None:
            return
        from ghostdesk.ui.training_pane import TrainingPane

        assert self._training_page is not None
        self.training_pane = TrainingPane(self.training, self._original.training)
        self._training_page.layout().addWidget(self.training_pane)
        # The run view needs room for its plots; grow once, around the same centre.
        centre = self.frameGeometry().center()
        self.resize(max(self.width(), 1040), max(self.height(), 760))
        geometry = self.frameGeometry()
        geometry.moveCenter(centre)
        self.move(geometry.topLeft())

    # --- setup assistant (ghostdesk/ui/first_run.py) ----------------------------------------
    def _on_setup_button_clicked(self) -> None:
        """The welcome wizard again; what it settles fills these fields (saved on OK)."""
        from ghostdesk.ui.first_run import open_setup_from_settings

        self.setup_wizard = open_setup_from_settings(self)
    # --- end of setup assistant -------------------------------------------------------------


def _double(low: float, high: float, step: float, decimals: int) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(decimals)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    return spin

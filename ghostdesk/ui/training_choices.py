"""The left column of Settings ▸ Training: what the feedback is worth for each method, how to
learn from it (method, preset, base model, device, what to do afterwards, Advanced), the
"needs N more" notice, Start / Stop, and the paused run with Resume / Discard.

A view only: the Training pane connects its buttons and gives it the overview it read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ghostdesk.core.settings import TrainingSettings
from ghostdesk.core.training.run_config import run_uses_cuda
from ghostdesk.ui.form_widgets import choice_combo, hint_label, notice_frame, set_choice
from ghostdesk.ui.training_words import describe_preset, needs_more_text

if TYPE_CHECKING:
    from ghostdesk.ui.training_overview import TrainingOverview

METHOD_CHOICES = (
    ("auto", "Auto"),
    ("kto", "KTO: your 👍 and 👎"),
    ("dpo", "DPO: versions rated differently"),
    ("sft", "SFT: your rewritten replies"),
)
PRESET_CHOICES = (
    ("auto", "Auto"),
    ("quick", "Quick"),
    ("standard", "Standard"),
    ("thorough", "Thorough"),
)
DEVICE_CHOICES = (("auto", "Auto"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)"))
ADOPT_CHOICES = (
    ("ask", "Ask me"),
    ("auto", "Use it when it measures better"),
    ("never", "Only keep it"),
)
_ADVANCED = (
    "lora_r",
    "lora_alpha",
    "learning_rate",
    "max_steps",
    "max_length",
    "batch_size",
    "beta",
)
_METHOD_NAMES = {"kto": "KTO", "dpo": "DPO", "sft": "SFT"}
_ROLES = {
    "kto": "👍 / 👎 on replies",
    "dpo": "versions rated differently",
    "sft": "rewritten replies",
}


class TrainingChoices(QWidget):
    """Test hooks: the fields and buttons, `data_labels` ({method: (text, state)}),
    `needs_frame` / `needs_label`, `error_label`, `paused_box` / `paused_label`."""

    choices_changed = Signal()

    def __init__(self, persona_name: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._persona_name = persona_name
        self.overview: TrainingOverview | None = None
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 6, 0)

        data_box = QGroupBox("Your feedback")
        grid = QGridLayout(data_box)
        grid.setColumnStretch(1, 1)
        self.data_labels: dict[str, tuple[QLabel, QLabel]] = {}
        for row, method in enumerate(("kto", "dpo", "sft")):
            name = QLabel(f"<b>{_METHOD_NAMES[method]}</b>")
            name.setToolTip(_ROLES[method])
            text = QLabel("…", wordWrap=True)
            state = QLabel("")
            state.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
            grid.addWidget(name, row, 0, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(text, row, 1)
            grid.addWidget(state, row, 2)
            self.data_labels[method] = (text, state)
        column.addWidget(data_box)

        how = QGroupBox("How to learn")
        form = QFormLayout(how)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        self.method_combo = choice_combo(METHOD_CHOICES)
        form.addRow("Method", self.method_combo)
        self.method_hint = hint_label()
        form.addRow(self.method_hint)
        self.preset_combo = choice_combo(PRESET_CHOICES)
        form.addRow("Preset", self.preset_combo)
        self.preset_hint = hint_label()
        form.addRow(self.preset_hint)
        self.base_edit = QLineEdit()
        self.base_edit.setPlaceholderText("Auto: the chat model itself")
        self.base_edit.setClearButtonEnabled(True)
        self.base_edit.setToolTip(
            "For a large chat model, the folder of the original Hugging Face model it was "
            "quantized from (trained in 4 bits on a GPU)."
        )
        self.base_browse_button = QPushButton("Folder…")
        self.base_browse_button.setToolTip("Choose the original model's folder (empty: Auto)")
        base_row = QHBoxLayout()
        base_row.addWidget(self.base_edit, 1)
        base_row.addWidget(self.base_browse_button)
        form.addRow("Base model", base_row)
        self.device_combo = choice_combo(DEVICE_CHOICES)
        form.addRow("Device", self.device_combo)
        self.device_hint = hint_label()
        form.addRow(self.device_hint)
        self.adopt_combo = choice_combo(ADOPT_CHOICES)
        form.addRow("Afterwards", self.adopt_combo)
        column.addWidget(how)

        self.advanced_button = QToolButton(text="Advanced", checkable=True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setAutoRaise(True)
        self.advanced_button.toggled.connect(self._on_advanced_button_toggled)
        column.addWidget(self.advanced_button)
        self.advanced_box = QWidget()
        adv = QFormLayout(self.advanced_box)
        adv.setContentsMargins(12, 0, 0, 0)
        self.lora_r_spin = _int_spin(1024, 1)
        adv.addRow("LoRA rank", self.lora_r_spin)
        self.lora_alpha_spin = _float_spin(4096, 1.0, 1)
        adv.addRow("LoRA alpha", self.lora_alpha_spin)
        self.learning_rate_spin = _float_spin(0.01, 1e-5, 6)
        adv.addRow("Learning rate", self.learning_rate_spin)
        self.max_steps_spin = _int_spin(1_000_000, 10)
        adv.addRow("Steps", self.max_steps_spin)
        self.max_length_spin = _int_spin(131_072, 64)
        self.max_length_spin.setSuffix(" tokens")
        adv.addRow("Example length", self.max_length_spin)
        self.batch_size_spin = _int_spin(512, 1)
        adv.addRow("Batch size", self.batch_size_spin)
        self.beta_spin = _float_spin(10, 0.05, 2)
        adv.addRow("Beta (KTO/DPO)", self.beta_spin)
        adv.addRow(hint_label("“Preset” uses the preset's value."))
        self.advanced_box.setVisible(False)
        column.addWidget(self.advanced_box)

        self.needs_frame, self.needs_label = notice_frame("warning")
        column.addWidget(self.needs_frame)
        self.error_label = QLabel(objectName="InlineError", wordWrap=True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setVisible(False)
        column.addWidget(self.error_label)

        self.start_button = QPushButton("Start training", objectName="PrimaryButton")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip(
            "Stops after the current step and saves a checkpoint, so the run can resume"
        )
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 1)
        buttons.addWidget(self.stop_button)
        column.addLayout(buttons)

        self.paused_box = QGroupBox("Paused run")
        paused = QVBoxLayout(self.paused_box)
        self.paused_label = QLabel(wordWrap=True)
        self.resume_button = QPushButton("Resume")
        self.discard_button = QPushButton("Discard…")
        paused_row = QHBoxLayout()
        paused_row.addWidget(self.resume_button)
        paused_row.addWidget(self.discard_button)
        paused_row.addStretch(1)
        paused.addWidget(self.paused_label)
        paused.addLayout(paused_row)
        self.paused_box.setVisible(False)
        column.addWidget(self.paused_box)
        column.addStretch(1)

        for combo in (self.method_combo, self.preset_combo, self.device_combo):
            combo.currentIndexChanged.connect(self._on_choice_changed)
        for spin in self._advanced_spins():
            spin.valueChanged.connect(self._on_choice_changed)
        self.base_browse_button.clicked.connect(self._on_base_browse_button_clicked)

    def _advanced_spins(self) -> list[Any]:
        return [
            self.lora_r_spin,
            self.lora_alpha_spin,
            self.learning_rate_spin,
            self.max_steps_spin,
            self.max_length_spin,
            self.batch_size_spin,
            self.beta_spin,
        ]

    # -- the settings fields -----------------------------------------------------------------

    def load(self, t: TrainingSettings) -> None:
        set_choice(self.method_combo, t.method)
        set_choice(self.preset_combo, t.preset)
        set_choice(self.device_combo, t.device)
        set_choice(self.adopt_combo, t.adopt)
        self.base_edit.setText("" if t.base_model == "auto" else t.base_model)
        for name, spin in zip(_ADVANCED, self._advanced_spins(), strict=True):
            spin.setValue(getattr(t, name))
        if t.overrides():
            self.advanced_button.setChecked(True)
        self.update_hints()

    def edited_training(self) -> TrainingSettings:
        """The Training settings in the fields (not validated)."""
        base = self.base_edit.text().strip()
        return TrainingSettings(
            method=self.method_combo.currentData(),
            preset=self.preset_combo.currentData(),
            adopt=self.adopt_combo.currentData(),
            base_model=str(Path(base).expanduser()) if base else "auto",
            device=self.device_combo.currentData(),
            lora_r=self.lora_r_spin.value(),
            lora_alpha=round(self.lora_alpha_spin.value(), 4),
            learning_rate=round(self.learning_rate_spin.value(), 8),
            max_steps=self.max_steps_spin.value(),
            max_length=self.max_length_spin.value(),
            batch_size=self.batch_size_spin.value(),
            beta=round(self.beta_spin.value(), 4),
        )

    # -- what was read -----------------------------------------------------------------------

    def show_overview(self, o: TrainingOverview) -> None:
        self.overview = o
        for method, (text, state) in self.data_labels.items():
            data = o.summary.of(method)
            text.setText(data.describe())
            state.setText("ready" if data.ready else f"needs {data.missing} more")
            state.setToolTip(needs_more_text(data))
        if o.paused:
            more = len(o.paused) - 1
            older = f" ({more} older paused run{'s' if more != 1 else ''} too)" if more else ""
            self.paused_label.setText(f"{o.paused[0].describe()}{older}.")
        self.paused_box.setVisible(bool(o.paused))
        self.update_hints()

    def chosen_method(self) -> str | None:
        """The method a run would use (Auto resolved), None before the feedback is read."""
        method = self.method_combo.currentData()
        if method == "auto":
            return self.overview.auto_method if self.overview is not None else None
        return method

    @property
    def ready(self) -> bool:
        """There is enough feedback for the chosen method."""
        method = self.chosen_method()
        return bool(self.overview and method and self.overview.summary.of(method).ready)

    def update_hints(self) -> None:
        """The lines under the fields and the "needs N more" notice."""
        o = self.overview
        method = self.chosen_method()
        if o is None or method is None:
            self.method_hint.setText("Reading your feedback…")
            self.preset_hint.setText("")
            self.device_hint.setText("")
            self.needs_frame.setVisible(False)
            return
        data = o.summary.of(method)
        auto = self.method_combo.currentData() == "auto"
        self.method_hint.setText(o.auto_reason if auto else f"{data.describe()}.")
        self.preset_hint.setText(
            describe_preset(
                self.preset_combo.currentData(),
                self.edited_training(),
                data.train,
                self._uses_cuda(),
            )
        )
        self._show_preset_values(data.train)
        self.device_hint.setText(self._device_text())
        needs = needs_more_text(data)
        self.needs_label.setText(needs)
        self.needs_frame.setVisible(bool(needs))

    def set_phase(self, idle: bool, stoppable: bool) -> None:
        """Which buttons work now. `idle`: this window runs nothing; a run started
        elsewhere (`ghostdesk train`) holds the data folder too."""
        ready = self.ready
        elsewhere = idle and bool(self.overview and self.overview.running_run_id)
        free = idle and not elsewhere
        self.start_button.setEnabled(free and ready)
        if not idle:
            tip = "A run is in progress"
        elif elsewhere:
            tip = "Another training run is in progress in this data folder"
        elif not ready:
            tip = "Not enough feedback yet for this method"
        else:
            tip = "Saves these choices and starts a run"
        self.start_button.setToolTip(tip)
        self.stop_button.setEnabled(stoppable)
        has_paused = bool(self.overview and self.overview.paused)
        self.resume_button.setEnabled(free and has_paused)
        self.discard_button.setEnabled(free and has_paused)

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def _show_preset_values(self, n_train: int) -> None:
        """Each Advanced field left at 0 says which value the preset gives it."""
        from ghostdesk.core.training.run_config import planned_steps, preset_config

        cfg = preset_config(self.preset_combo.currentData(), n_train, cuda=self._uses_cuda())
        values: dict[str, Any] = {name: getattr(cfg, name) for name in _ADVANCED}
        values["max_steps"] = planned_steps(cfg, n_train)
        for name, spin in zip(_ADVANCED, self._advanced_spins(), strict=True):
            spin.setSpecialValueText(f"Preset ({values[name]:g})")

    def _uses_cuda(self) -> bool:
        return run_uses_cuda(self.device_combo.currentData(),
                             lambda: bool(self.overview and self.overview.cuda))

    def _device_text(self) -> str:
        device = self.device_combo.currentData()
        found = bool(self.overview and self.overview.cuda)
        if device == "auto":
            text = f"Trains on {'the GPU (CUDA)' if found else 'the CPU (no CUDA GPU found)'}."
        elif device == "cuda" and not found:
            text = "No CUDA GPU was found: the run would fail; choose Auto or CPU."
        else:
            text = ""
        if self._uses_cuda():
            text += (
                f" When the chat model is on the GPU too, {self._persona_name()} rests "
                "(the model is unloaded) while it learns and comes back afterwards."
            )
        return text.strip()

    # -- slots -------------------------------------------------------------------------------

    def _on_choice_changed(self, *_args: Any) -> None:
        self.update_hints()
        self.choices_changed.emit()

    def _on_advanced_button_toggled(self, checked: bool) -> None:
        self.advanced_box.setVisible(checked)
        self.advanced_button.setArrowType(
            Qt.ArrowType.DownArrow if checked else Qt.ArrowType.RightArrow
        )

    def _on_base_browse_button_clicked(self) -> None:
        start = self.base_edit.text().strip() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(
            self, "The chat model's original Hugging Face folder", start
        )
        if folder:
            self.base_edit.setText(folder)


def _int_spin(maximum: int, step: int) -> QSpinBox:
    spin = QSpinBox(minimum=0, maximum=maximum, singleStep=step)
    spin.setSpecialValueText("Preset")
    return spin


def _float_spin(maximum: float, step: float, decimals: int) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(decimals)
    spin.setRange(0.0, maximum)
    spin.setSingleStep(step)
    spin.setSpecialValueText("Preset")
    return spin

"""The welcome wizard: look at the hardware, pick a model (bundled, a file on disk, or a
download from the curated catalogue), then name the companion.

Shown once, before the main window, on a first launch (`maybe_run_first_run`); skippable;
reachable again from Settings (`open_setup_from_settings`) or a menu (`open_setup_wizard`).
All the decisions live in ghostdesk.core.setup; this module only asks.
"""

from __future__ import annotations

import copy
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.models.catalogue import Catalogue, CatalogueModel, format_size, load_catalogue
from ghostdesk.core.setup.first_run import (
    SetupChoice,
    apply_setup_choice,
    first_run_needed,
    mark_first_run_done,
    models_dir,
)
from ghostdesk.core.setup.hardware import HardwareInfo, Recommendation, recommend
from ghostdesk.ui.workers import WorkFailed, call_in_background, stream_in_background

if TYPE_CHECKING:
    from ghostdesk.core.models.download import ModelDownload
    from ghostdesk.services import AppServices

log = logging.getLogger(__name__)

PAGE_WELCOME, PAGE_MODEL, PAGE_DOWNLOAD, PAGE_PERSONA = range(4)
BUNDLED_TEXT = ("Gemma 3 270M, included with GhostDesk: starts at once on any computer. "
                "Its answers are simple; you can switch to a larger model at any time.")


def _label(text: str = "", name: str | None = None) -> QLabel:
    label = QLabel(text, wordWrap=True)
    if name:
        label.setObjectName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


# --- pages ------------------------------------------------------------------------------------

class _Page(QWizardPage):
    """A page that reaches its wizard through Qt (`wizard()`), not a Python attribute: a
    page <-> wizard reference cycle would leave the wizard to Python's cyclic collector,
    which can delete it at any moment, even inside one of its own Qt callbacks."""

    def _owner(self) -> FirstRunWizard | None:
        return self.wizard()  # type: ignore[return-value]


class WelcomePage(_Page):
    """Says what GhostDesk is and what this computer has; Next waits for the detection."""

    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Welcome to GhostDesk")
        self.setSubTitle("A companion that lives on this computer. Nothing you say leaves it.")
        self.hardware_label = _label("Looking at this computer…")
        self.recommendation_label = _label()
        self.notes_label = _label(name="FieldHint")
        layout = QVBoxLayout(self)
        layout.addWidget(_label(
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


class ModelPage(_Page):
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
        self.model_info_label = _label(name="FieldHint")
        self.model_info_label.setOpenExternalLinks(True)
        self.model_info_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextBrowserInteraction)
        download_box = QVBoxLayout()
        download_box.setContentsMargins(24, 0, 0, 0)
        download_box.addWidget(self.model_combo)
        download_box.addWidget(self.model_info_label)

        self.error_label = _label(name="InlineError")
        self.error_label.setVisible(False)

        layout = QVBoxLayout(self)
        layout.addWidget(self.bundled_radio)
        bundled_hint = _label(BUNDLED_TEXT, "FieldHint")
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
        free = _free_space(folder)
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


class DownloadPage(_Page):
    """Downloads the chosen catalogue model with progress, speed, ETA and pause/resume."""

    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Downloading the model")
        self.download: ModelDownload | None = None
        self.model: CatalogueModel | None = None
        self.finished_path: Path | None = None
        self.running = False
        self.progress = QProgressBar(minimum=0, maximum=1000, textVisible=True)
        self.status_label = _label()
        self.error_label = _label(name="InlineError")
        self.error_label.setVisible(False)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self._on_pause_button_clicked)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.pause_button)
        layout = QVBoxLayout(self)
        layout.addWidget(_label("The file goes into GhostDesk's data folder. You can pause, "
                                "go back, or close this window: the download continues "
                                "where it stopped next time.", "FieldHint"))
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addWidget(self.error_label)
        layout.addLayout(row)
        layout.addStretch(1)

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        model = self._owner().model_page.selected_model()
        if model is None:
            return
        if self.model != model:
            self.model = model
            self.finished_path = None
            self.download = self._owner().make_download(model)
        self.setSubTitle(f"{model.name} · {model.quant} · about {format_size(model.size_bytes)}")
        if self.finished_path is None:
            self.start()

    def cleanupPage(self) -> None:  # noqa: N802 (Back was pressed)
        self.stop()

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        return self.finished_path is not None

    def start(self) -> None:
        if self.running or self.download is None:
            return
        self.running = True
        self.error_label.setVisible(False)
        self.pause_button.setText("Pause")
        self.pause_button.setEnabled(True)
        self.status_label.setText("Contacting the server…")
        download = self.download
        stream_in_background(download.run, self._on_event, self._on_done)

    def stop(self) -> None:
        """Pause (the part is kept); safe to call at any time."""
        if self.running and self.download is not None:
            self.download.pause()

    def _on_pause_button_clicked(self) -> None:
        if self.running:
            self.pause_button.setEnabled(False)
            self.stop()
        else:
            self.start()

    def _on_event(self, event: Any) -> None:
        from ghostdesk.core.models import download as dl

        if isinstance(event, dl.DownloadStarted):
            if event.resumed_from:
                self.status_label.setText(
                    f"Continuing from {format_size(event.resumed_from)} of "
                    f"{format_size(event.total_bytes)}…")
        elif isinstance(event, dl.DownloadProgress):
            self.progress.setValue(int(event.fraction * 1000))
            text = f"{format_size(event.done_bytes)} of {format_size(event.total_bytes)}"
            if event.bytes_per_second > 0:
                text += f" · {format_size(event.bytes_per_second)}/s"
            if event.eta_seconds is not None:
                text += f" · about {_duration(event.eta_seconds)} left"
            self.status_label.setText(text)
        elif isinstance(event, dl.DownloadVerifying):
            if event.checked_bytes < event.total_bytes:
                self.status_label.setText(
                    f"Checking what was downloaded before: {format_size(event.checked_bytes)}…")
            else:
                self.status_label.setText("Checking the file…")
        elif isinstance(event, dl.DownloadRetrying):
            self.status_label.setText(f"The connection was lost ({event.reason}); "
                                      f"trying again (attempt {event.attempt})…")
        elif isinstance(event, dl.DownloadPaused):
            self.status_label.setText(
                f"Paused at {format_size(event.done_bytes)} of {format_size(event.total_bytes)}.")
        elif isinstance(event, dl.DownloadFinished):
            self.finished_path = event.path
            self.progress.setValue(1000)
            self.status_label.setText(
                "Already downloaded." if event.already_present else
                "Downloaded and verified." if event.verified else "Downloaded.")
            self.completeChanged.emit()
        elif isinstance(event, WorkFailed):
            err = event.error
            if not isinstance(err, GhostDeskError):
                log.error("model download failed", exc_info=err)
            self.error_label.setText(str(err))
            self.error_label.setVisible(True)

    def _on_done(self) -> None:
        self.running = False
        done = self.finished_path is not None
        self.pause_button.setEnabled(not done)
        self.pause_button.setVisible(not done)
        self.pause_button.setText("Try again" if self.error_label.isVisible() else "Resume")
        owner = self._owner()
        if owner is not None:
            owner.download_stopped.emit()


class PersonaPage(_Page):
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
        layout.addWidget(_label("Who it is ({name} is replaced by its name):"))
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


# --- the wizard ----------------------------------------------------------------------------------

class FirstRunWizard(QWizard):
    """`apply_to_services=True` (a first launch, or the menu) saves the choice and writes the
    first-run marker; False (from the Settings dialog) only emits `choice_made`."""

    choice_made = Signal(object)
    """SetupChoice, when Finish is pressed."""
    settings_applied = Signal(object, object)
    """(old, new) Settings, when the choice was saved (apply_to_services only)."""
    download_stopped = Signal()

    def __init__(
        self,
        services: AppServices,
        *,
        apply_to_services: bool = True,
        initial: SetupChoice | None = None,
        catalogue: Catalogue | None = None,
        detect: Callable[[], HardwareInfo] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.apply_to_services = apply_to_services
        self.initial = initial or SetupChoice()
        self.catalogue = catalogue or load_catalogue()
        self.hardware: HardwareInfo | None = None
        self.recommendation: Recommendation | None = None
        self.detection_done = False
        self.setWindowTitle("Set up GhostDesk")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setMinimumSize(640, 500)
        self.setButtonText(QWizard.WizardButton.CancelButton,
                           "Skip" if apply_to_services else "Cancel")

        self.welcome_page = WelcomePage()
        self.model_page = ModelPage()
        self.download_page = DownloadPage()
        self.persona_page = PersonaPage()
        self.setPage(PAGE_WELCOME, self.welcome_page)
        self.setPage(PAGE_MODEL, self.model_page)
        self.setPage(PAGE_DOWNLOAD, self.download_page)
        self.setPage(PAGE_PERSONA, self.persona_page)
        self.setStartId(PAGE_WELCOME)

        detector = detect or _detect_hardware
        call_in_background(detector, self._on_hardware_detected)

    # -- hardware -----------------------------------------------------------------------------

    def _on_hardware_detected(self, result: Any) -> None:
        self.detection_done = True
        if isinstance(result, WorkFailed):
            log.warning("hardware detection failed: %s", result.error)
            self.welcome_page.show_detection(None, None, str(result.error))
            return
        self.hardware = result
        self.recommendation = recommend(result, self.catalogue)
        self.welcome_page.show_detection(result, self.recommendation)

    def offered_models(self) -> list[CatalogueModel]:
        """The recommended models first, then the rest of the catalogue, largest tier last."""
        first = list(self.recommendation.models) if self.recommendation else []
        rest = [m for m in self.catalogue.models if m not in first]
        return first + rest

    def make_download(self, model: CatalogueModel) -> ModelDownload:
        from ghostdesk.core.models.download import download_for

        return download_for(model, models_dir(self.services.paths))

    # -- the result ---------------------------------------------------------------------------

    def choice(self) -> SetupChoice:
        page = self.model_page
        model_path: str | None
        downloaded = None
        if page.bundled_radio.isChecked():
            model_path = ""
        elif page.file_radio.isChecked():
            model_path = str(Path(page.path_edit.text().strip()).expanduser().resolve())
        elif self.download_page.finished_path is not None:
            model_path = str(self.download_page.finished_path)
            downloaded = self.download_page.model.id if self.download_page.model else None
        else:
            model_path = None
        return SetupChoice(
            model_path=model_path,
            persona_name=self.persona_page.name_edit.text().strip() or None,
            system_prompt=self.persona_page.prompt_edit.toPlainText() or None,
            downloaded_model_id=downloaded,
        )

    def done(self, result: int) -> None:
        self.download_page.stop()  # the part stays; a later download resumes it
        if result == QDialog.DialogCode.Accepted:
            choice = self.choice()
            if self.apply_to_services and not self._apply(choice):
                return  # the error is shown; the wizard stays open
            super().done(result)
            self.choice_made.emit(choice)
            return
        if self.apply_to_services:
            self._mark("skipped")
        super().done(result)

    def _apply(self, choice: SetupChoice) -> bool:
        old = copy.deepcopy(self.services.settings)
        new = apply_setup_choice(old, choice)
        try:
            self.services.save_settings(new)
        except GhostDeskError as err:
            self.persona_page.setSubTitle(f"Could not save: {err}")
            return False
        self._mark("finished")
        self.settings_applied.emit(old, new)
        return True

    def _mark(self, outcome: str) -> None:
        try:
            mark_first_run_done(self.services.paths, outcome)
        except OSError as err:  # only means the wizard shows again next time
            log.warning("could not write the first-run marker: %s", err)


def _detect_hardware() -> HardwareInfo:
    from ghostdesk.core.setup.hardware import detect_hardware

    return detect_hardware()


def _free_space(folder: Path) -> int | None:
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


# --- entry points ---------------------------------------------------------------------------------

def maybe_run_first_run(services: AppServices, **kwargs: Any) -> bool:
    """On a first launch, show the wizard (modal) before the main window. Returns whether it
    was shown. Its choice is saved before the window loads the model."""
    if not first_run_needed(services.paths):
        return False
    wizard = FirstRunWizard(services, **kwargs)
    wizard.exec()
    return True


def open_setup_wizard(
    services: AppServices,
    parent: QWidget | None = None,
    on_applied: Callable[[Any, Any], None] | None = None,
    **kwargs: Any,
) -> FirstRunWizard:
    """Open the wizard again (e.g. from a menu). When it finishes, the settings are saved and
    `on_applied(old, new)` is called, like SettingsDialog.settings_saved."""
    shown = _showing(getattr(parent, "setup_wizard", None))
    if shown is not None:
        return shown
    wizard = FirstRunWizard(services, apply_to_services=True, parent=parent, **kwargs)
    _release(getattr(parent, "setup_wizard", None))
    if parent is not None:
        parent.setup_wizard = wizard  # type: ignore[attr-defined]
    if on_applied is not None:
        wizard.settings_applied.connect(on_applied)
    wizard.open()
    return wizard


def open_setup_from_settings(dialog: Any, **kwargs: Any) -> FirstRunWizard:
    """Open the wizard over the Settings dialog; its choice fills the dialog's fields, and is
    saved (or not) with the dialog's OK."""
    shown = _showing(getattr(dialog, "setup_wizard", None))
    if shown is not None:
        return shown
    initial = SetupChoice(
        model_path=dialog.path_edit.text().strip(),
        persona_name=dialog.persona_name_edit.text().strip(),
        system_prompt=dialog.system_prompt_edit.toPlainText(),
    )
    wizard = FirstRunWizard(dialog.services, apply_to_services=False, initial=initial,
                            parent=dialog, **kwargs)
    _release(getattr(dialog, "setup_wizard", None))

    def fill(choice: SetupChoice) -> None:
        if choice.model_path is not None:
            dialog.path_edit.setText(choice.model_path)
            dialog.path_edit.editingFinished.emit()  # the dialog re-reads the model's details
        if choice.persona_name:
            dialog.persona_name_edit.setText(choice.persona_name)
        if choice.system_prompt:
            dialog.system_prompt_edit.setPlainText(choice.system_prompt)

    wizard.choice_made.connect(fill)
    wizard.open()
    return wizard


def _showing(wizard: Any) -> FirstRunWizard | None:
    if isinstance(wizard, FirstRunWizard) and wizard.isVisible():
        if QApplication.platformName() != "offscreen":  # it can't raise windows
            wizard.raise_()
            wizard.activateWindow()
        return wizard
    return None


def _release(wizard: Any) -> None:
    """Hand a finished wizard back to Python, which deletes it when it is no longer
    referenced. (Deleting it from the Qt side, e.g. with WA_DeleteOnClose, can crash
    PySide6 when its parent is owned by Python.)"""
    if isinstance(wizard, FirstRunWizard):
        wizard.setParent(None)

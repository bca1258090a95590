"""The welcome wizard: look at the hardware, pick a model (bundled, a file on disk, or a
download from the curated catalogue), then name the companion.

Shown once, before the main window, on a first launch (`maybe_run_first_run`); skippable;
reachable again from Settings (`open_setup_from_settings`) or a menu (`open_setup_wizard`).
All the decisions live in ghostdesk.core.setup; this module only asks. Each page is a module
of its own: first_run_welcome (the hardware and the recommendation), first_run_model (which
model), first_run_download (the download's progress) and first_run_persona (the name).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QApplication, QDialog, QWidget, QWizard

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.models.catalogue import Catalogue, CatalogueModel, load_catalogue
from ghostdesk.core.setup.first_run import (
    SetupChoice,
    apply_setup_choice,
    first_run_needed,
    mark_first_run_done,
    models_dir,
)
from ghostdesk.core.setup.hardware import HardwareInfo, Recommendation, recommend
from ghostdesk.ui.first_run_download import DownloadPage
from ghostdesk.ui.first_run_model import ModelPage
from ghostdesk.ui.first_run_page import PAGE_DOWNLOAD, PAGE_MODEL, PAGE_PERSONA, PAGE_WELCOME
from ghostdesk.ui.first_run_persona import PersonaPage
from ghostdesk.ui.first_run_welcome import WelcomePage
from ghostdesk.ui.workers import WorkFailed, call_in_background

if TYPE_CHECKING:
    from ghostdesk.core.models.download import ModelDownload
    from ghostdesk.services import AppServices

log = logging.getLogger(__name__)


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

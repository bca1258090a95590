"""Settings ▸ Training: the choices on the left (training_choices.py), the run on the right
(training_run_view.py), and the adapters on disk in its last tab; the pane wires them to the
main window's TrainingSession and reads the overview from disk.

The pane is a view of the session: closing the Settings dialog leaves the run going, and
opening it again shows the run from its start. The Training settings fields are part of the
dialog's settings (saved on OK); Start saves them first, because the run is planned from the
saved settings.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.settings import TrainingSettings
from ghostdesk.ui.adapters_list import AdapterList
from ghostdesk.ui.training_choices import TrainingChoices
from ghostdesk.ui.training_overview import TrainingOverview
from ghostdesk.ui.training_run_view import RunView
from ghostdesk.ui.training_session import (
    HANDING_OFF,
    IDLE,
    PLANNING,
    RUNNING,
    TrainingSession,
)
from ghostdesk.ui.workers import WorkFailed

ADAPTERS_TAB = 2


class TrainingPane(QWidget):
    """Test hooks: `choices` (the fields and Start / Stop / Resume / Discard), `run_view` and
    its widgets here too (`progress`, `state_label`, `detail_label`, `plots`, `log_view`,
    `result_label`, `samples_view`, `adopt_frame`, `adopt_label`, `use_button`, `tabs`),
    `adapters`, `overview_loaded` (a count)."""

    def __init__(
        self, session: TrainingSession, training: TrainingSettings, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = session.runner
        self.overview: TrainingOverview | None = None
        self.overview_loaded = 0
        self._loading = False
        self._again = False

        self.choices = TrainingChoices(lambda: session.services.settings.persona.name)
        c = self.choices
        c.choices_changed.connect(self._update_buttons)
        c.start_button.clicked.connect(self._on_start_button_clicked)
        c.stop_button.clicked.connect(session.stop)
        c.resume_button.clicked.connect(self._on_resume_button_clicked)
        c.discard_button.clicked.connect(self._on_discard_button_clicked)
        scroll = QScrollArea()
        scroll.setWidget(self.choices)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(380)
        scroll.setMaximumWidth(430)

        self.run_view = v = RunView(session)
        self.state_label, self.progress, self.detail_label = (
            v.state_label, v.progress, v.detail_label)
        self.plots, self.log_view, self.tabs = v.plots, v.log_view, v.tabs
        self.result_label, self.samples_view = v.result_label, v.samples_view
        self.adopt_frame, self.adopt_label, self.use_button = (
            v.adopt_frame, v.adopt_label, v.use_button)
        self.tabs.addTab(self._build_adapters_page(), "Adapters")

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(12)
        layout.addWidget(scroll, 0)
        layout.addWidget(self.run_view, 1)

        self.load(training)
        self._reload_timer = QTimer(self, singleShot=True, interval=150)
        self._reload_timer.timeout.connect(self.reload)
        session.changed.connect(self._on_session_changed)
        session.run_action_failed.connect(self._on_session_run_action_failed)
        session.records_changed.connect(self._reload_timer.start)
        session.adapter_busy_changed.connect(self.adapters.set_busy)
        session.adapter_action_failed.connect(self._on_session_adapter_action_failed)
        self.runner.run_started.connect(self._on_runner_run_started)
        self.runner.run_finished.connect(self._on_runner_run_finished)
        self.reload()

    def _build_adapters_page(self) -> QWidget:
        self.adapters = AdapterList()
        self.adapters_error = QLabel(objectName="InlineError", wordWrap=True)
        self.adapters_error.setVisible(False)
        page = QWidget()
        box = QVBoxLayout(page)
        box.addWidget(self.adapters, 1)
        box.addWidget(self.adapters_error)
        self.adapters.activate_requested.connect(self._on_adapters_activate_requested)
        self.adapters.deactivate_requested.connect(self._on_adapters_deactivate_requested)
        self.adapters.rollback_requested.connect(self._on_adapters_rollback_requested)
        self.adapters.delete_requested.connect(self._on_adapters_delete_requested)
        return page

    # -- the settings fields -----------------------------------------------------------------

    def load(self, t: TrainingSettings) -> None:
        self.choices.load(t)
        self._update_buttons()

    def edited_training(self) -> TrainingSettings:
        """The Training settings in the fields (not validated)."""
        return self.choices.edited_training()

    def _save_choices(self) -> None:
        """Save the Training section now (the run is planned from saved settings)."""
        services = self.session.services
        new = copy.deepcopy(services.settings)
        new.training = self.edited_training()
        new.validate()
        if new.training != services.settings.training:
            services.save_settings(new)

    # -- overview ----------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the feedback counts, paused runs and adapters again (off the GUI thread)."""
        if self._loading:
            self._again = True
            return
        self._loading = True
        self.session.load_overview(self._on_overview_loaded)

    def _on_overview_loaded(self, result: Any) -> None:
        self._loading = False
        if self._again:
            self._again = False
            self.reload()
            return
        if isinstance(result, WorkFailed):
            self.choices.show_error(f"Your feedback could not be read: {result.error}")
            return
        self._set_overview(result)
        self.choices.show_overview(result)
        self.adapters.set_adapters(result.adapters, result.active_id, result.rollback_to)
        self.tabs.setTabText(ADAPTERS_TAB, f"Adapters ({len(result.adapters)})")
        self._update_buttons()
        self.overview_loaded += 1

    def _set_overview(self, overview: TrainingOverview) -> None:
        self.overview = self.choices.overview = overview
        self.run_view.running_elsewhere = overview.running_run_id

    def _update_buttons(self) -> None:
        phase = self.session.phase
        self.choices.set_phase(phase == IDLE, phase in (PLANNING, HANDING_OFF, RUNNING))
        self.run_view.show_state()

    # -- the run -----------------------------------------------------------------------------

    def _on_runner_run_started(self, _cfg: Any) -> None:
        self.choices.show_error("")

    def _on_runner_run_finished(self, outcome: Any) -> None:
        o = self.overview
        if o is not None and o.running_run_id == outcome.run_id:
            # Read while this run trained; it holds the data folder no longer.
            self._set_overview(replace(o, running_run_id=""))
        self._update_buttons()

    # -- slots -------------------------------------------------------------------------------

    def _on_start_button_clicked(self) -> None:
        self.choices.show_error("")
        try:
            self._save_choices()
        except GhostDeskError as err:
            self.choices.show_error(str(err))
            return
        self.session.start()

    def _on_resume_button_clicked(self) -> None:
        if self.overview and self.overview.paused:
            self.choices.show_error("")
            self.session.resume(self.overview.paused[0].cfg)

    def _on_discard_button_clicked(self) -> None:
        if not (self.overview and self.overview.paused):
            return
        paused = self.overview.paused[0]
        answer = QMessageBox.question(
            self,
            "Discard paused run",
            f"Discard the {paused.describe()}?\nIts checkpoints and log are deleted. Your "
            "feedback and the adapters are kept.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.session.discard(paused.cfg)

    def _on_session_changed(self) -> None:
        self._update_buttons()

    def _on_session_run_action_failed(self, error: Exception) -> None:
        if isinstance(error, GhostDeskError):
            self.choices.show_error(str(error))
        else:
            self.choices.show_error(f"The training could not start: {error}")
        self._update_buttons()

    def _on_adapters_activate_requested(self, adapter_id: str) -> None:
        self.adapters_error.setVisible(False)
        self.session.activate(adapter_id)

    def _on_adapters_deactivate_requested(self) -> None:
        self.adapters_error.setVisible(False)
        self.session.deactivate()

    def _on_adapters_rollback_requested(self) -> None:
        self.adapters_error.setVisible(False)
        self.session.rollback()

    def _on_adapters_delete_requested(self, adapter_id: str) -> None:
        self.adapters_error.setVisible(False)
        self.session.delete(adapter_id)

    def _on_session_adapter_action_failed(self, error: Exception) -> None:
        self.adapters_error.setText(
            str(error) if isinstance(error, GhostDeskError) else f"Something went wrong: {error}"
        )
        self.adapters_error.setVisible(True)
        self.tabs.setCurrentIndex(ADAPTERS_TAB)

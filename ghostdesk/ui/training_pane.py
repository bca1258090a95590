"""Settings ▸ Training: what the feedback is worth, how to learn from it, the run as it goes
(progress, live plots, log), how the new adapter measured, and the adapters on disk.

The pane is a view of the main window's TrainingSession: closing the Settings dialog leaves
the run going, and opening it again shows the run from its start. The Training settings
fields are part of the dialog's settings (saved on OK); Start saves them first, because the
run is planned from the saved settings.
"""

from __future__ import annotations

import copy
import html
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.settings import TrainingSettings
from ghostdesk.core.training.evaluation import MIN_VERDICT_EXAMPLES
from ghostdesk.ui.adapters_list import AdapterList
from ghostdesk.ui.theme import current_theme
from ghostdesk.ui.training_choices import TrainingChoices, notice_frame
from ghostdesk.ui.training_run import describe_event, format_duration
from ghostdesk.ui.training_session import (
    HANDING_OFF,
    IDLE,
    PLANNING,
    RUNNING,
    STOPPING,
    TrainingOverview,
    TrainingSession,
)
from ghostdesk.ui.workers import WorkFailed


class TrainingPane(QWidget):
    """Test hooks: `choices` (the fields and Start / Stop / Resume / Discard), `progress`,
    `state_label`, `detail_label`, `plots`, `log_view`, `result_label`, `samples_view`,
    `adopt_frame`, `use_button`, `adapters`, `tabs`, `overview_loaded` (a count)."""

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
        right = self._build_run_view()
        scroll = QScrollArea()
        scroll.setWidget(self.choices)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(380)
        scroll.setMaximumWidth(430)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(12)
        layout.addWidget(scroll, 0)
        layout.addWidget(right, 1)

        self.load(training)
        self._reload_timer = QTimer(self, singleShot=True, interval=150)
        self._reload_timer.timeout.connect(self.reload)
        session.changed.connect(self._on_session_changed)
        session.run_action_failed.connect(self._on_session_run_action_failed)
        session.records_changed.connect(self._reload_timer.start)
        session.adoption_requested.connect(self._on_session_adoption_requested)
        session.adoption_settled.connect(self._on_session_adoption_settled)
        session.adapter_busy_changed.connect(self.adapters.set_busy)
        session.adapter_action_failed.connect(self._on_session_adapter_action_failed)
        self.runner.run_started.connect(self._on_runner_run_started)
        self.runner.event_received.connect(self._on_runner_event_received)
        self.runner.run_finished.connect(self._on_runner_run_finished)
        self._replay()
        self.reload()

    # -- construction ------------------------------------------------------------------------

    def _build_run_view(self) -> QWidget:
        from ghostdesk.ui.training_plots import TrainingPlots  # imports pyqtgraph

        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        self.state_label = QLabel(objectName="TrainingState", wordWrap=True)
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.state_label.font()
        font.setBold(True)
        self.state_label.setFont(font)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.detail_label = QLabel(objectName="FieldHint", wordWrap=True)
        self.tokens_frame, self.tokens_label = notice_frame("warning")
        self.plots = TrainingPlots()
        column.addWidget(self.state_label)
        column.addWidget(self.progress)
        column.addWidget(self.detail_label)
        column.addWidget(self.tokens_frame)
        column.addWidget(self.plots, 3)

        self.adopt_frame, self.adopt_label = notice_frame("info")
        self.use_button = QPushButton("Use it", objectName="PrimaryButton")
        self.keep_button = QPushButton("Keep the current one")
        self.adopt_frame.layout().addWidget(self.use_button)
        self.adopt_frame.layout().addWidget(self.keep_button)
        self.use_button.clicked.connect(self._on_use_button_clicked)
        self.keep_button.clicked.connect(self.session.keep_current)
        column.addWidget(self.adopt_frame)

        self.result_label = QLabel("No run has been measured yet.", wordWrap=True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)
        self.samples_view = QTextBrowser()
        self.samples_view.setOpenLinks(False)
        self.samples_view.setVisible(False)
        result_page = QWidget()
        result_box = QVBoxLayout(result_page)
        result_box.addWidget(self.result_label)
        result_box.addWidget(self.samples_view, 1)
        result_box.addStretch(0)

        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)

        self.adapters = AdapterList()
        self.adapters_error = QLabel(objectName="InlineError", wordWrap=True)
        self.adapters_error.setVisible(False)
        adapters_page = QWidget()
        adapters_box = QVBoxLayout(adapters_page)
        adapters_box.addWidget(self.adapters, 1)
        adapters_box.addWidget(self.adapters_error)
        self.adapters.activate_requested.connect(self._on_adapters_activate_requested)
        self.adapters.deactivate_requested.connect(self._on_adapters_deactivate_requested)
        self.adapters.rollback_requested.connect(self._on_adapters_rollback_requested)
        self.adapters.delete_requested.connect(self._on_adapters_delete_requested)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(result_page, "Result")
        self.tabs.addTab(self.log_view, "Log")
        self.tabs.addTab(adapters_page, "Adapters")
        column.addWidget(self.tabs, 4)
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
        self.overview = result
        self.choices.show_overview(result)
        self.adapters.set_adapters(result.adapters, result.active_id, result.rollback_to)
        self.tabs.setTabText(2, f"Adapters ({len(result.adapters)})")
        self._update_buttons()
        self.overview_loaded += 1

    def _update_buttons(self) -> None:
        phase = self.session.phase
        self.choices.set_phase(phase == IDLE, phase in (PLANNING, HANDING_OFF, RUNNING))
        self._show_state()

    # -- the run -----------------------------------------------------------------------------

    def _replay(self) -> None:
        """Show what the current or last run reported before this view existed."""
        runner = self.runner
        self.log_view.clear()
        for event in runner.events:
            self._log_event(event)
        total = runner.last_step.max_steps if runner.last_step else 0
        self.plots.set_steps(runner.steps, total)
        if runner.started is not None:
            self._show_started(runner.started)
        self._show_evaluation(runner.evaluated)
        if self.session.pending_adoption:
            self._on_session_adoption_requested(self.session.pending_adoption)
        else:
            self.adopt_frame.setVisible(False)
        self._show_state()

    def _show_state(self) -> None:
        s, runner = self.session, self.runner
        step = runner.last_step
        phase = s.phase
        self.detail_label.setText("")
        if phase == PLANNING:
            self._busy_bar("Exporting your feedback…")
        elif phase == HANDING_OFF:
            name = s.services.settings.persona.name
            self._busy_bar(
                f"{name} is resting while it learns: unloading the chat model from the GPU…"
            )
        elif phase == STOPPING and not runner.running:
            self._busy_bar("Cancelling…")
        elif phase in (RUNNING, STOPPING) and step is None:
            what = runner.stage or "Starting the training process…"
            self._busy_bar(("Stopping… " if phase == STOPPING else "") + what)
        elif phase in (RUNNING, STOPPING) and step is not None:
            self.progress.setRange(0, max(1, step.max_steps))
            self.progress.setValue(step.step)
            self.progress.setFormat(f"step {step.step} / {step.max_steps}")
            if phase == STOPPING:
                self.state_label.setText("Stopping after the current step…")
            else:
                self.state_label.setText(f"Learning: step {step.step} of {step.max_steps}")
            self.detail_label.setText(_step_details(step))
        else:
            self._show_ended()

    def _busy_bar(self, text: str) -> None:
        self.state_label.setText(text)
        self.progress.setRange(0, 0)
        self.progress.setFormat("")

    def _show_ended(self) -> None:
        outcome = self.session.last_outcome or self.runner.outcome
        step = self.runner.last_step
        if step is not None:
            self.progress.setRange(0, max(1, step.max_steps))
            self.progress.setValue(
                step.step if outcome is None or outcome.status != "completed" else step.max_steps
            )
            self.progress.setFormat(f"step {self.progress.value()} / {step.max_steps}")
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("")
        elsewhere = self.overview.running_run_id if self.overview is not None else ""
        if elsewhere:
            self.state_label.setText(
                f"Training run {elsewhere} is in progress outside this window (for example "
                "`ghostdesk train`); a new run can start when it ends."
            )
            return
        if outcome is None:
            self.state_label.setText("Not training.")
            return
        if outcome.status == "completed":
            self.state_label.setText(
                f"Finished in {format_duration(outcome.seconds)}: adapter {outcome.adapter_id}"
                " saved."
            )
        elif outcome.status == "stopped":
            self.state_label.setText(f"Stopped at step {outcome.step}. {outcome.reason}".strip())
            self.detail_label.setText(outcome.hint or "It can resume from its checkpoint.")
        else:
            self.state_label.setText(f"Failed: {outcome.reason}")
            self.detail_label.setText(outcome.hint)

    def _on_runner_run_started(self, _cfg: Any) -> None:
        self.log_view.clear()
        self.plots.clear()
        self.tokens_frame.setVisible(False)
        self._show_evaluation(None)
        self.adopt_frame.setVisible(False)
        self.choices.show_error("")
        self._show_state()

    def _on_runner_event_received(self, event: Any) -> None:
        self._log_event(event)
        if event.kind == "step":
            self.plots.add_step(event)
        elif event.kind == "started":
            self._show_started(event)
        elif event.kind == "evaluated":
            self._show_evaluation(event)
            self.tabs.setCurrentIndex(0)
        self._show_state()

    def _on_runner_run_finished(self, outcome: Any) -> None:
        o = self.overview
        if o is not None and o.running_run_id == outcome.run_id:
            # Read while this run trained; it holds the data folder no longer.
            self.overview = self.choices.overview = replace(o, running_run_id="")
        if outcome.status == "failed":
            self.tabs.setCurrentIndex(1)
        self._update_buttons()

    def _log_event(self, event: Any) -> None:
        self.log_view.appendPlainText(describe_event(event))
        if event.kind == "failed" and event.detail:
            self.log_view.appendPlainText("— end of the training log —\n" + event.detail)

    def _show_started(self, started: Any) -> None:
        self.plots.show_margin(started.method != "sft")
        if started.chat_tokens_checked and not started.chat_tokens_match:
            self.tokens_label.setText(
                "The training text is split into tokens differently from how the chat model "
                "reads it. Training goes on, but the adapter may have less effect than it "
                "should."
            )
            self.tokens_frame.setVisible(True)
        else:
            self.tokens_frame.setVisible(False)

    def _show_evaluation(self, ev: Any) -> None:
        if ev is None:
            self.result_label.setText("No run has been measured yet.")
            self.samples_view.setVisible(False)
            return
        t = current_theme()
        previous = f"adapter {ev.previous_adapter}" if ev.previous_adapter else "the base model"
        verdict_color = t.accent if ev.recommended else t.warning_text
        too_few = ev.examples < MIN_VERDICT_EXAMPLES
        verdict = ("Better" if ev.recommended
                   else "Too few held-out ratings to compare with" if too_few
                   else "Not better")
        self.result_label.setText(
            f"<p><span style='color:{verdict_color}; font-weight:600'>{verdict}</span> than "
            f"{html.escape(previous)}, measured on {ev.examples} held-out example"
            f"{'s' if ev.examples != 1 else ''}.</p>"
            f"<table cellspacing='0' cellpadding='3'>"
            f"<tr><td>Preference accuracy</td><td align='right'><b>{ev.accuracy:.0%}</b></td>"
            f"<td style='color:{t.muted}'>&nbsp;was {ev.previous_accuracy:.0%}</td></tr>"
            f"<tr><td>Reward margin</td><td align='right'><b>{ev.reward_margin:+.2f}</b></td>"
            f"<td style='color:{t.muted}'>&nbsp;was {ev.previous_reward_margin:+.2f}</td></tr>"
            f"</table><p style='color:{t.muted}'>{html.escape(ev.reason)}</p>"
        )
        self.samples_view.setHtml(_samples_html(ev.samples, t))
        self.samples_view.setVisible(bool(ev.samples))

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

    def _on_session_adoption_requested(self, adapter_id: str) -> None:
        ev = self.runner.evaluated
        headline, figures = "The new adapter is ready.", ""
        if ev is not None:
            previous = "the adapter in use" if ev.previous_adapter else "the base model"
            figures = (
                f" It measured {ev.accuracy:.0%} against {ev.previous_accuracy:.0%} for {previous}."
            )
            if ev.recommended:
                headline = "The new adapter is better."
            elif ev.examples < MIN_VERDICT_EXAMPLES:
                figures += f" ({ev.examples} held-out example{'' if ev.examples == 1 else 's'}: " \
                           "too few to be sure.)"
        self.adopt_label.setText(f"{headline}{figures} Use it in the chat?")
        self.adopt_frame.setVisible(True)
        self.adopt_frame.setProperty("adapter_id", adapter_id)

    def _on_session_adoption_settled(self) -> None:
        self.adopt_frame.setVisible(False)

    def _on_use_button_clicked(self) -> None:
        adapter_id = self.adopt_frame.property("adapter_id") or self.session.pending_adoption
        if adapter_id:
            self.session.adopt(str(adapter_id))

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
        self.tabs.setCurrentIndex(2)


def _step_details(step: Any) -> str:
    parts = []
    if step.eta_s:
        parts.append(f"about {format_duration(step.eta_s)} left")
    if step.tokens_per_second:
        parts.append(f"{step.tokens_per_second:.1f} tokens/s")
    if step.loss is not None:
        parts.append(f"loss {step.loss:.4f}")
    if step.reward_margin is not None:
        parts.append(f"reward margin {step.reward_margin:+.3f}")
    return " · ".join(parts)


def _samples_html(samples: list[dict[str, str]], t: Any) -> str:
    def cell(text: str) -> str:
        return html.escape(text or "").replace("\n", "<br>")

    rows = "".join(
        f"<tr><td>{cell(s.get('prompt', ''))}</td><td>{cell(s.get('base', ''))}</td>"
        f"<td>{cell(s.get('adapter', ''))}</td></tr>"
        for s in samples
    )
    head = f"style='color:{t.muted}; font-weight:600; border-bottom:1px solid {t.border}'"
    return (
        f"<table width='100%' cellspacing='0' cellpadding='5' "
        f"style='border-collapse:collapse; color:{t.text}'>"
        f"<tr><td width='30%' {head}>Prompt</td><td width='35%' {head}>Before (base model)"
        f"</td><td width='35%' {head}>After (new adapter)</td></tr>{rows}</table>"
    )

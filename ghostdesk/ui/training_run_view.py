"""The right column of Settings ▸ Training: the run as it goes (what it is doing, the progress
bar, live plots, the event log) and as it ended (the measured result with side-by-side
answers, and the question whether to use the new adapter).

A view of the session's TrainingRunner: built in the middle of a run, it shows the run from
its start. The Training pane adds its Adapters page to `tabs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ghostdesk.ui.form_widgets import notice_frame
from ghostdesk.ui.theme import current_theme
from ghostdesk.ui.training_session import HANDING_OFF, PLANNING, RUNNING, STOPPING
from ghostdesk.ui.training_words import (
    adoption_question,
    describe_event,
    format_duration,
    result_html,
    samples_html,
    step_details,
)

if TYPE_CHECKING:
    from ghostdesk.ui.training_session import TrainingSession

RESULT_TAB, LOG_TAB = 0, 1


class RunView(QWidget):
    """Test hooks: `state_label`, `progress`, `detail_label`, `tokens_frame`, `plots`,
    `adopt_frame` / `adopt_label` / `use_button`, `result_label`, `samples_view`, `log_view`,
    `tabs`."""

    def __init__(self, session: TrainingSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from ghostdesk.ui.training_plots import TrainingPlots  # imports pyqtgraph

        self.session = session
        self.runner = session.runner
        self.running_elsewhere = ""
        """A run training in this data folder outside this window (from the overview)."""
        column = QVBoxLayout(self)
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
        self.keep_button.clicked.connect(session.keep_current)
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

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(result_page, "Result")
        self.tabs.addTab(self.log_view, "Log")
        column.addWidget(self.tabs, 4)

        session.adoption_requested.connect(self._on_session_adoption_requested)
        session.adoption_settled.connect(self._on_session_adoption_settled)
        self.runner.run_started.connect(self._on_runner_run_started)
        self.runner.event_received.connect(self._on_runner_event_received)
        self.runner.run_finished.connect(self._on_runner_run_finished)
        self._replay()

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
        self.show_state()

    # -- what the run is doing ---------------------------------------------------------------

    def show_state(self) -> None:
        """The state line, the progress bar and the figures under it, for the session's
        phase and the runner's last step."""
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
            self.detail_label.setText(step_details(step))
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
        if self.running_elsewhere:
            self.state_label.setText(
                f"Training run {self.running_elsewhere} is in progress outside this window "
                "(for example `ghostdesk train`); a new run can start when it ends."
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

    # -- the runner's events -----------------------------------------------------------------

    def _on_runner_run_started(self, _cfg: Any) -> None:
        self.log_view.clear()
        self.plots.clear()
        self.tokens_frame.setVisible(False)
        self._show_evaluation(None)
        self.adopt_frame.setVisible(False)
        self.show_state()

    def _on_runner_event_received(self, event: Any) -> None:
        self._log_event(event)
        if event.kind == "step":
            self.plots.add_step(event)
        elif event.kind == "started":
            self._show_started(event)
        elif event.kind == "evaluated":
            self._show_evaluation(event)
            self.tabs.setCurrentIndex(RESULT_TAB)
        self.show_state()

    def _on_runner_run_finished(self, outcome: Any) -> None:
        if outcome.status == "failed":
            self.tabs.setCurrentIndex(LOG_TAB)

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
        self.result_label.setText(result_html(ev, t))
        self.samples_view.setHtml(samples_html(ev.samples, t))
        self.samples_view.setVisible(bool(ev.samples))

    # -- the new adapter ---------------------------------------------------------------------

    def _on_session_adoption_requested(self, adapter_id: str) -> None:
        self.adopt_label.setText(adoption_question(self.runner.evaluated))
        self.adopt_frame.setVisible(True)
        self.adopt_frame.setProperty("adapter_id", adapter_id)

    def _on_session_adoption_settled(self) -> None:
        self.adopt_frame.setVisible(False)

    def _on_use_button_clicked(self) -> None:
        adapter_id = self.adopt_frame.property("adapter_id") or self.session.pending_adoption
        if adapter_id:
            self.session.adopt(str(adapter_id))

"""The learning loop inside the running app: plan a run, make room on the GPU, follow the
run, and act on its adapter (use it, ask, or only keep it).

Owned by the main window, so a run goes on when the Settings dialog closes; the Training tab
is a view of it. Everything slow (exporting the feedback, looking for CUDA, swapping an
adapter into the model) runs on a pool thread; the child itself is a QProcess.

The window (the "host") provides: `model_ready` / `model_failed` signals, `is_model_ready`,
`is_model_loading`, `chat_gpu_layers()`, `adapter_slot()`, `rest_model(on_rested)` (unload
the chat model so the run can use the GPU) and `wake_model()` (load it again). What the tab
reads from disk is in training_overview.py, switching adapters in adapter_switcher.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.training.run_config import run_uses_cuda
from ghostdesk.ui.adapter_switcher import AdapterSwitcher
from ghostdesk.ui.training_overview import TrainingOverview, load_overview
from ghostdesk.ui.training_run import TrainingRunner
from ghostdesk.ui.workers import WorkFailed, call_in_background

if TYPE_CHECKING:
    from ghostdesk.core.training.launcher import RunOutcome
    from ghostdesk.core.training.run_config import RunConfig
    from ghostdesk.services import AppServices

log = logging.getLogger("ghostdesk.ui.training")

IDLE, PLANNING, HANDING_OFF, RUNNING, STOPPING = (
    "idle",
    "planning",
    "handing-off",
    "running",
    "stopping",
)


def model_must_rest(run_on_cuda: bool, chat_gpu_layers: int | None) -> bool:
    """Whether the chat model has to be unloaded while a run trains: only when both want
    the GPU. `chat_gpu_layers` is what the chat model holds on the GPU (-1: all layers,
    0 or None: it runs on the CPU, or nothing is loaded). On CPU-only machines the chat
    goes on during training."""
    return run_on_cuda and bool(chat_gpu_layers)


class TrainingSession(QObject):
    """Test hooks: `runner`, `phase`, `command_for` (replaces the child's command line),
    `planner_for` (replaces services.training_planner), `cuda_probe`."""

    changed = Signal()
    """The phase or the progress changed (status bar, buttons)."""
    run_action_failed = Signal(object)
    """A run could not start, resume or be discarded (an exception; a GhostDeskError says
    what to do)."""
    adoption_requested = Signal(str)
    """A better adapter is saved and the adopt setting is "ask": use it or not?"""
    adoption_settled = Signal()
    records_changed = Signal()
    """Adapters, paused runs or feedback counts may have changed: read them again."""
    adapter_busy_changed = Signal(bool)
    """Forwarded from `adapters` (the AdapterSwitcher): a change is being applied."""
    adapter_action_failed = Signal(object)
    """Forwarded from `adapters`: a change of adapter was refused or failed."""
    notice = Signal(str, str)
    """(text, kind "info" / "warning" / "error") for the window's banner."""

    def __init__(self, host: Any, services: AppServices, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.services = services
        self.registry = services.adapters
        self.runner = TrainingRunner(self)
        self.adapters = AdapterSwitcher(host, services.adapters, self)
        self.phase = IDLE
        self.method_reason = ""
        self.pending_adoption: str | None = None
        self.last_outcome: RunOutcome | None = None
        self.command_for: Callable[[RunConfig], list[str]] | None = None
        self.planner_for: Callable[[], Any] = services.training_planner
        self.cuda_probe: Callable[[], bool] = probe_cuda
        self._cuda: bool | None = None
        self._rested = False
        self._cancelled = False
        self._tracker: Any = None
        self.runner.event_received.connect(self._on_runner_event_received)
        self.runner.progress_changed.connect(self._on_runner_progress_changed)
        self.runner.stop_requested.connect(self._on_runner_stop_requested)
        self.runner.run_finished.connect(self._on_runner_run_finished)
        self.adapters.busy_changed.connect(self.adapter_busy_changed)
        self.adapters.action_failed.connect(self.adapter_action_failed)
        self.adapters.records_changed.connect(self.records_changed)

    # -- state -------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A run is being prepared, started, or is running."""
        return self.phase != IDLE

    @property
    def model_rested(self) -> bool:
        """The chat model was unloaded for this run."""
        return self._rested

    @property
    def adapter_busy(self) -> bool:
        return self.adapters.busy

    def cuda(self) -> bool:
        """Whether training can use CUDA here; asked once (it imports torch: call off the
        GUI thread the first time)."""
        if self._cuda is None:
            self._cuda = bool(self.cuda_probe())
        return self._cuda

    def status_text(self) -> str:
        """What the status bar says, "" when idle."""
        if self.phase == PLANNING:
            return "Getting ready to learn…"
        if self.phase == HANDING_OFF:
            return "Making room on the GPU…"
        if self.phase == STOPPING:
            return "Stopping the training…"
        if self.phase == RUNNING:
            step = self.runner.last_step
            if step is not None:
                return f"Learning… step {step.step}/{step.max_steps}"
            return "Learning… getting ready"
        return ""

    def _set_phase(self, phase: str) -> None:
        self.phase = phase
        self.changed.emit()

    # -- overview ----------------------------------------------------------------------------

    def load_overview(self, on_done: Callable[[Any], None]) -> None:
        """Read the feedback counts, paused runs and adapters on a pool thread; `on_done`
        gets a TrainingOverview or a WorkFailed."""
        registry, cuda, planner_for = self.registry, self.cuda, self.planner_for
        home = self.services.paths.root

        def read() -> TrainingOverview:
            return load_overview(planner_for(), home, registry, cuda)

        call_in_background(read, on_done)

    # -- starting and stopping ---------------------------------------------------------------

    def start(self) -> None:
        """Plan a run from the saved Training settings and start it."""
        if self.busy:
            return
        planner_for, cuda = self.planner_for, self.cuda
        device = self.services.settings.training.device

        def plan() -> tuple[RunConfig, str, bool]:
            # "auto" is settled here, with the probe below, so that planning never imports
            # torch into this process (see probe_cuda).
            on_cuda = run_uses_cuda(device, cuda)
            planned = planner_for().plan(device="cuda" if on_cuda else "cpu")
            return planned.cfg, planned.method_reason, on_cuda

        self._begin(plan)

    def resume(self, cfg: RunConfig) -> None:
        """Start a paused run again; it goes on from its newest checkpoint."""
        if self.busy:
            return
        cuda = self.cuda

        def check() -> tuple[RunConfig, str, bool]:
            return cfg, "", run_uses_cuda(cfg.device, cuda)

        self._begin(check)

    def _begin(self, prepare: Callable[[], tuple[RunConfig, str, bool]]) -> None:
        self._cancelled = False
        self.last_outcome = None
        self._set_phase(PLANNING)
        call_in_background(prepare, self._on_prepared)

    def _on_prepared(self, result: Any) -> None:
        if isinstance(result, WorkFailed):
            self._set_phase(IDLE)
            if not isinstance(result.error, GhostDeskError):
                log.error("planning a training run failed", exc_info=result.error)
            self.run_action_failed.emit(result.error)
            return
        cfg, reason, on_cuda = result
        if self._cancelled:
            self._drop_unstarted(cfg)
            return
        self.method_reason = reason
        if model_must_rest(on_cuda, self.host.chat_gpu_layers()):
            self._rested = True
            self._set_phase(HANDING_OFF)
            self.host.rest_model(lambda: self._launch(cfg))
        else:
            self._launch(cfg)

    def _launch(self, cfg: RunConfig) -> None:
        if self._cancelled:
            self._drop_unstarted(cfg)
            return
        from ghostdesk.core.training.planner import AdoptionTracker

        self._tracker = AdoptionTracker()
        try:
            command = self.command_for(cfg) if self.command_for is not None else None
            self.runner.start(cfg, command)
        except Exception as err:
            self._set_phase(IDLE)
            self._wake()
            if not isinstance(err, GhostDeskError):
                log.error("starting the training child failed", exc_info=err)
            self.run_action_failed.emit(err)
            return
        self._set_phase(STOPPING if self.runner.stopping else RUNNING)

    def stop(self) -> None:
        """Stop the run after its current step (it can resume), or cancel one that has not
        started yet."""
        if self.phase in (PLANNING, HANDING_OFF):
            self._cancelled = True
            self._set_phase(STOPPING)
        elif self.runner.running:
            self.runner.stop()

    def _drop_unstarted(self, cfg: RunConfig) -> None:
        """Cancelled before the child started: its freshly exported folder is no use. A
        paused run (resume) keeps its checkpoints."""
        from ghostdesk.core.training.run_folders import discard_unless_resumable

        discard_unless_resumable(cfg)
        self._set_phase(IDLE)
        self._wake()
        self.records_changed.emit()

    def discard(self, cfg: RunConfig) -> None:
        """Delete a paused run's folder (checkpoints, log, exported data)."""
        from ghostdesk.core.training.run_folders import discard_run

        call_in_background(lambda: discard_run(cfg), self._on_discarded)

    def _on_discarded(self, result: Any) -> None:
        if isinstance(result, WorkFailed):
            self.run_action_failed.emit(result.error)
        self.records_changed.emit()

    def shutdown(self) -> None:
        """The app is closing: stop a run that is still going (blocking, bounded)."""
        self.runner.shutdown()

    def _wake(self) -> None:
        if self._rested:
            self._rested = False
            self.host.wake_model()

    # -- the child's events ------------------------------------------------------------------

    def _on_runner_event_received(self, event: Any) -> None:
        if self._tracker is None:
            return
        decision = self._tracker.feed(event)
        if decision is None:
            return
        adapter_id = self._tracker.adapter_id
        evaluated = self._tracker.evaluated
        reason = evaluated.reason if evaluated is not None else ""
        if decision == "activate":
            self.notice.emit(
                f"Learned from your feedback: the chat now uses the new adapter. {reason}".strip(),
                "info",
            )
            self.adapters.activate(adapter_id)
        elif decision == "ask":
            self.pending_adoption = adapter_id
            self.adoption_requested.emit(adapter_id)
        else:
            self.notice.emit(f"The new adapter was kept but is not used. {reason}".strip(), "info")
        self.records_changed.emit()

    def _on_runner_progress_changed(self, _step: int, _max_steps: int, _eta: float) -> None:
        self.changed.emit()

    def _on_runner_stop_requested(self) -> None:
        self._set_phase(STOPPING)

    def _on_runner_run_finished(self, outcome: RunOutcome) -> None:
        self.last_outcome = outcome
        self._set_phase(IDLE)
        self._wake()
        if outcome.status == "stopped":
            text = (
                f"Training stopped at step {outcome.step}. "
                f"{outcome.reason + ' ' if outcome.reason else ''}"
                "Resume it from Settings ▸ Training."
            )
            self.notice.emit(text, "info")
        elif outcome.status == "failed":
            text = (
                "Training failed: " + outcome.reason + (f"\n{outcome.hint}" if outcome.hint else "")
            )
            self.notice.emit(text, "error")
        self.records_changed.emit()

    # -- which adapter the chat uses (adapter_switcher.py) ----------------------------------

    def adopt(self, adapter_id: str) -> None:
        """The person chose to use the new adapter."""
        self.pending_adoption = None
        self.adoption_settled.emit()
        self.adapters.activate(adapter_id)

    def keep_current(self) -> None:
        """The person chose to keep what the chat uses now (the new adapter stays listed)."""
        self.pending_adoption = None
        self.adoption_settled.emit()

    def activate(self, adapter_id: str) -> None:
        self.adapters.activate(adapter_id)

    def deactivate(self) -> None:
        self.adapters.deactivate()

    def rollback(self) -> None:
        self.adapters.rollback()

    def delete(self, adapter_id: str) -> None:
        self.adapters.delete(adapter_id)


def probe_cuda() -> bool:
    """Whether training can use CUDA here (asked in a separate process: see
    run_config.cuda_available)."""
    from ghostdesk.core.training.run_config import cuda_available

    return cuda_available()

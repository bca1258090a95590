"""One training child at a time, run through a QProcess: its events as signals, a graceful stop.

The child (`python -m ghostdesk.core.training run.json`) writes one JSON event per line on
stdout and everything else to the run's training.log. Reading its output is driven by the
event loop (readyRead), so nothing waits on the child and no thread is blocked. What the
current or last run reported stays here (steps, evaluation, outcome), so a view opened in
the middle of a run can show everything from the start.

Stopping: the run's STOP file is created (the child stops after the current step and saves
a checkpoint); when it has not exited after `stop_grace_ms` it is terminated, and
`kill_grace_ms` later killed. A child that exits without a last event (a crash, a kill from
outside) gets a failure with the end of its log.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QIODevice, QObject, QProcess, QProcessEnvironment, QTimer, Signal

if TYPE_CHECKING:
    from ghostdesk.core.training.events import Evaluated, Saved, Started, Step, TrainingEvent
    from ghostdesk.core.training.run_config import RunConfig

log = logging.getLogger("ghostdesk.ui.training")

STOP_GRACE_MS = 120_000
"""How long a stopping child may take to finish its step and save a checkpoint."""
KILL_GRACE_MS = 10_000
"""How long a terminated child may take to exit before it is killed."""
LOG_TAIL_CHARS = 2000


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, for a person."""

    status: str
    """"completed" (an adapter was saved), "stopped" (can resume) or "failed"."""
    run_id: str
    adapter_id: str = ""
    reason: str = ""
    hint: str = ""
    detail: str = ""
    """The technical error or the end of the log."""
    step: int = 0
    seconds: float = 0.0


class TrainingRunner(QObject):
    """Runs one training child at a time. Test hooks: `process`, `events`, `steps`."""

    run_started = Signal(object)
    """The child was started for this RunConfig."""
    event_received = Signal(object)
    """Every event of the child, in order."""
    progress_changed = Signal(int, int, float)
    """(step, max_steps, seconds left)"""
    stop_requested = Signal()
    run_finished = Signal(object)
    """A RunOutcome; the runner is idle again."""

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        stop_grace_ms: int = STOP_GRACE_MS,
        kill_grace_ms: int = KILL_GRACE_MS,
    ) -> None:
        super().__init__(parent)
        self.cfg: RunConfig | None = None
        self.process: QProcess | None = None
        self.events: list[TrainingEvent] = []
        self.steps: list[Step] = []
        self.stage = ""
        self.started: Started | None = None
        self.evaluated: Evaluated | None = None
        self.saved: Saved | None = None
        self.outcome: RunOutcome | None = None
        self.stopping = False
        self._forced = False
        self._terminal: Any = None
        self._started_at = 0.0
        self._terminate_timer = QTimer(self, singleShot=True, interval=stop_grace_ms)
        self._terminate_timer.timeout.connect(self._on_terminate_timer_timeout)
        self._kill_timer = QTimer(self, singleShot=True, interval=kill_grace_ms)
        self._kill_timer.timeout.connect(self._on_kill_timer_timeout)

    @property
    def running(self) -> bool:
        return self.process is not None

    @property
    def last_step(self) -> Step | None:
        return self.steps[-1] if self.steps else None

    # -- starting ----------------------------------------------------------------------------

    def start(self, cfg: RunConfig, command: list[str] | None = None) -> None:
        """Start the child for `cfg` (run.json is written and an old STOP removed).
        `command` replaces the real child's command line (tests). Raises GhostDeskError
        when the config is invalid; a child that can't start ends as a failed run."""
        from ghostdesk.core.training.launcher import child_env, prepare_run

        if self.process is not None:
            raise RuntimeError("a training run is already in progress")
        argv = prepare_run(cfg)
        if command is not None:
            argv = command
        self.cfg = cfg
        self.events, self.steps = [], []
        self.stage, self.started, self.evaluated, self.saved = "", None, None, None
        self.outcome, self._terminal, self.stopping, self._forced = None, None, False, False
        self._started_at = time.monotonic()
        try:
            cfg.run_dir.mkdir(parents=True, exist_ok=True)
            with open(cfg.log_file, "a", encoding="utf-8") as fh:
                fh.write(f"\n--- start {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
        except OSError as err:
            log.warning("could not write to %s: %s", cfg.log_file, err)

        process = QProcess(self)
        process.setProgram(argv[0])
        process.setArguments(argv[1:])
        env = QProcessEnvironment()
        for key, value in child_env(cfg).items():
            env.insert(key, value)
        process.setProcessEnvironment(env)
        process.setStandardInputFile(QProcess.nullDevice())
        # stderr never goes to a pipe that could fill up: straight into the run's log.
        process.setStandardErrorFile(str(cfg.log_file), QIODevice.OpenModeFlag.Append)
        if os.name != "nt":
            # Ctrl+C in the terminal that started GhostDesk must not reach the child unasked.
            process.setUnixProcessParameters(QProcess.UnixProcessFlag.CreateNewSession)
        process.readyReadStandardOutput.connect(self._on_process_ready_read_standard_output)
        process.finished.connect(self._on_process_finished)
        process.errorOccurred.connect(self._on_process_error_occurred)
        self.process = process
        self.run_started.emit(cfg)
        process.start()

    # -- stopping ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the child to stop after its current step (it saves a checkpoint first); it is
        terminated when it takes longer than the grace period, then killed."""
        if self.process is None or self.stopping or self.cfg is None:
            return
        self.stopping = True
        try:
            self.cfg.stop_file.parent.mkdir(parents=True, exist_ok=True)
            self.cfg.stop_file.touch()
        except OSError as err:
            log.warning("could not create %s: %s", self.cfg.stop_file, err)
            self._terminate_timer.setInterval(0)  # no file: the signal is the only way
        self._terminate_timer.start()
        self.stop_requested.emit()

    def shutdown(self, wait_ms: int = 30_000) -> None:
        """The app is closing: stop the child, waiting at most about `wait_ms` (blocking;
        call after the event loop ended)."""
        process = self.process
        if process is None:
            return
        self.stop()
        if not process.waitForFinished(wait_ms):
            process.terminate()
            if not process.waitForFinished(KILL_GRACE_MS):
                process.kill()
                process.waitForFinished(5000)

    def _on_terminate_timer_timeout(self) -> None:
        if self.process is not None:
            log.info("the training child did not stop in time: terminating it")
            self._forced = True
            self.process.terminate()
            self._kill_timer.start()

    def _on_kill_timer_timeout(self) -> None:
        if self.process is not None:
            log.warning("the training child ignored the request to end: killing it")
            self.process.kill()

    # -- the child's output ------------------------------------------------------------------

    def _on_process_ready_read_standard_output(self) -> None:
        process = self.process
        if process is None:
            return
        while process.canReadLine():
            self._read_line(bytes(process.readLine().data()))

    def _read_line(self, raw: bytes) -> None:
        from ghostdesk.core.training.events import parse_event

        if not raw.strip():
            return
        try:
            event = parse_event(raw)
        except (ValueError, TypeError):
            return  # not an event: a stray line a library printed
        self._handle(event)

    def _handle(self, event: Any) -> None:
        self.events.append(event)
        kind = event.kind
        if kind == "preparing":
            self.stage = event.stage
        elif kind == "started":
            self.started = event
            self.stage = ""
        elif kind == "step":
            self.steps.append(event)
            self.stage = ""
        elif kind == "evaluated":
            self.evaluated = event
        elif kind == "saved":
            self.saved = event
        elif kind in ("finished", "failed"):
            self._terminal = event
        self.event_received.emit(event)
        if kind == "step":
            self.progress_changed.emit(event.step, event.max_steps, event.eta_s or 0.0)

    def _on_process_error_occurred(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            from ghostdesk.core.training.events import Failed

            reason = self.process.errorString()
            self._handle(
                Failed(
                    reason=f"The training process could not start: {reason}",
                    hint="Reinstall GhostDesk.",
                )
            )
            self._end(-1)

    def _on_process_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        process = self.process
        if process is None:
            return
        while process.canReadLine():
            self._read_line(bytes(process.readLine().data()))
        rest = bytes(process.readAllStandardOutput().data())
        for line in rest.splitlines():
            self._read_line(line)
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        self._end(-1 if crashed else exit_code)

    def _end(self, exit_code: int) -> None:
        process, self.process = self.process, None
        self._terminate_timer.stop()
        self._kill_timer.stop()
        if process is not None:
            process.deleteLater()
        self.outcome = self._outcome(exit_code)
        if self._terminal is None and self.outcome.status == "failed":
            from ghostdesk.core.training.events import Failed

            self._handle(
                Failed(
                    reason=self.outcome.reason, hint=self.outcome.hint, detail=self.outcome.detail
                )
            )
        self.stopping = False
        self.run_finished.emit(self.outcome)

    def _outcome(self, exit_code: int) -> RunOutcome:
        cfg = self.cfg
        assert cfg is not None
        step = self.steps[-1].step if self.steps else 0
        seconds = time.monotonic() - self._started_at
        end = self._terminal
        if end is not None and end.kind == "finished":
            return RunOutcome(
                status=end.status,
                run_id=cfg.run_id,
                adapter_id=end.adapter_id,
                step=end.step or step,
                seconds=end.seconds or seconds,
            )
        if end is not None:
            return RunOutcome(
                status="failed",
                run_id=cfg.run_id,
                reason=end.reason,
                hint=end.hint,
                detail=end.detail,
                step=step,
                seconds=seconds,
            )
        resumable = _has_checkpoint(cfg)
        resume_hint = (
            "Start it again (Resume) to go on from its last checkpoint."
            if resumable
            else "Start the training again."
        )
        if self.stopping and (self._forced or exit_code == 0):
            # Asked to stop and had to be ended: stopped all the same, from the person's side.
            reason = "The training did not stop in time and was ended." if self._forced else ""
            return RunOutcome(
                status="stopped",
                run_id=cfg.run_id,
                step=step,
                seconds=seconds,
                reason=reason,
                hint=resume_hint,
            )
        if exit_code < 0:
            reason = "The training process crashed or was ended from outside."
        elif exit_code == 0:
            reason = "The training process ended without reporting a result."
        else:
            reason = f"The training process crashed (exit code {exit_code})."
        return RunOutcome(
            status="failed",
            run_id=cfg.run_id,
            reason=reason,
            hint=resume_hint,
            detail=log_tail(cfg),
            step=step,
            seconds=seconds,
        )


def log_tail(cfg: RunConfig, chars: int = LOG_TAIL_CHARS) -> str:
    """The end of a run's training.log (what the child wrote to stderr)."""
    from ghostdesk.core.training.launcher import run_log_tail

    return run_log_tail(cfg, chars).strip()


def _has_checkpoint(cfg: RunConfig) -> bool:
    from ghostdesk.core.training.job import valid_checkpoints

    return bool(valid_checkpoints(cfg.checkpoint_dir))


def run_uses_cuda(device: str, cuda_available: Callable[[], bool]) -> bool:
    """Whether a run set to `device` ("auto", "cpu", "cuda") trains on the GPU.
    `cuda_available` is only asked for "auto" (it imports torch: seconds, off the GUI
    thread)."""
    if device == "cuda":
        return True
    if device == "cpu":
        return False
    return bool(cuda_available())


def model_must_rest(run_on_cuda: bool, chat_gpu_layers: int | None) -> bool:
    """Whether the chat model has to be unloaded while a run trains: only when both want
    the GPU. `chat_gpu_layers` is what the chat model holds on the GPU (-1: all layers,
    0 or None: it runs on the CPU, or nothing is loaded). On CPU-only machines the chat
    goes on during training."""
    return run_on_cuda and bool(chat_gpu_layers)


def describe_event(event: Any) -> str:
    """One line for the event log."""
    kind = event.kind
    if kind == "preparing":
        return event.stage
    if kind == "started":
        where = "the GPU" if event.device == "cuda" else "the CPU"
        base = "its Hugging Face folder" if event.base == "hf-folder" else "the chat model"
        line = (
            f"Started: {event.method.upper()}, {event.preset} preset, on {where} from "
            f"{base}{' (4-bit)' if event.load_in_4bit else ''}; "
            f"{event.train_examples} training and {event.eval_examples} held-out "
            f"examples, {event.max_steps} steps"
        )
        if event.resumed_from_step:
            line += f"; resumed from step {event.resumed_from_step}"
        return line + "."
    if kind == "step":
        parts = [f"Step {event.step}/{event.max_steps}", f"loss {_num(event.loss)}"]
        if event.reward_margin is not None:
            parts.append(f"reward margin {event.reward_margin:+.3f}")
        if event.tokens_per_second:
            parts.append(f"{event.tokens_per_second:.1f} tokens/s")
        return " · ".join(parts)
    if kind == "evaluated":
        return (
            f"Measured: accuracy {event.accuracy:.0%} (was {event.previous_accuracy:.0%}), "
            f"reward margin {event.reward_margin:+.2f}. {event.reason}"
        )
    if kind == "saved":
        return f"Saved adapter {event.adapter_id}."
    if kind == "finished":
        if event.status == "stopped":
            return f"Stopped at step {event.step}; it can resume from there."
        return f"Finished in {format_duration(event.seconds)}."
    if kind == "failed":
        return f"Failed: {event.reason}" + (f" {event.hint}" if event.hint else "")
    return str(event)


def format_duration(seconds: float) -> str:
    """ "45 s", "4 min", "1 h 05 min"."""
    s = max(0, round(seconds or 0))
    if s < 60:
        return f"{s} s"
    minutes = round(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"

"""One training child at a time, run through a QProcess: the core's ChildRun protocol adapted to
Qt signals.

Reading the child's output is driven by the event loop (readyRead), so nothing waits on the
child and no thread is blocked. What the lines mean, how a stop is asked for, and what the end
of a run means (a last word, a stop that had to be forced, a death without a word) is all
core's launcher.ChildRun, the same the CLI follows a run with. This module only starts the
process, forwards its lines and exit, and runs the grace timers: a stopping child that has not
exited after `stop_grace_ms` is terminated, and `kill_grace_ms` later killed. What the
current or last run reported stays in its ChildRun, so a view opened in the middle of a run
can show everything from the start.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QIODevice, QObject, QProcess, QProcessEnvironment, QTimer, Signal

from ghostdesk.core.training.launcher import KILL_GRACE_S, STOP_GRACE_S, ChildRun, RunOutcome

if TYPE_CHECKING:
    from ghostdesk.core.training.events import (
        Evaluated,
        Saved,
        Started,
        Step,
        TrainingEvent,
    )
    from ghostdesk.core.training.run_config import RunConfig

log = logging.getLogger("ghostdesk.ui.training")

STOP_GRACE_MS = int(STOP_GRACE_S * 1000)
KILL_GRACE_MS = int(KILL_GRACE_S * 1000)


class TrainingRunner(QObject):
    """Runs one training child at a time. Test hooks: `process`, `child` (the ChildRun),
    and what it recorded: `events`, `steps`, `evaluated`, `saved`, `outcome`."""

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
        self.child: ChildRun | None = None
        self.process: QProcess | None = None
        self._terminate_timer = QTimer(self, singleShot=True, interval=stop_grace_ms)
        self._terminate_timer.timeout.connect(self._on_terminate_timer_timeout)
        self._kill_timer = QTimer(self, singleShot=True, interval=kill_grace_ms)
        self._kill_timer.timeout.connect(self._on_kill_timer_timeout)

    # -- what the current or last run reported ------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None

    @property
    def stopping(self) -> bool:
        """A stop was asked for and the child has not exited yet."""
        return self.running and self.child is not None and self.child.stop_requested

    @property
    def cfg(self) -> RunConfig | None:
        return self.child.cfg if self.child is not None else None

    @property
    def events(self) -> list[TrainingEvent]:
        return self.child.events if self.child is not None else []

    @property
    def steps(self) -> list[Step]:
        return self.child.steps if self.child is not None else []

    @property
    def last_step(self) -> Step | None:
        return self.child.last_step if self.child is not None else None

    @property
    def stage(self) -> str:
        return self.child.stage if self.child is not None else ""

    @property
    def started(self) -> Started | None:
        return self.child.started if self.child is not None else None

    @property
    def evaluated(self) -> Evaluated | None:
        return self.child.evaluated if self.child is not None else None

    @property
    def saved(self) -> Saved | None:
        return self.child.saved if self.child is not None else None

    @property
    def outcome(self) -> RunOutcome | None:
        return self.child.outcome if self.child is not None else None

    # -- starting ----------------------------------------------------------------------------

    def start(self, cfg: RunConfig, command: list[str] | None = None) -> None:
        """Start the child for `cfg` (run.json is written and an old STOP removed).
        `command` replaces the real child's command line (tests). Raises GhostDeskError
        when the config is invalid; a child that can't start ends as a failed run."""
        if self.process is not None:
            raise RuntimeError("a training run is already in progress")
        child = ChildRun(cfg)
        argv = child.begin()
        if command is not None:
            argv = command
        self.child = child

        process = QProcess(self)
        process.setProgram(argv[0])
        process.setArguments(argv[1:])
        env = QProcessEnvironment()
        for key, value in child.environment().items():
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
        child = self.child
        if self.process is None or child is None or child.stop_requested:
            return
        if not child.request_stop():
            log.warning("could not create %s: stopping the child with a signal",
                        child.cfg.stop_file)
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
            self._force(process.terminate)
            if not process.waitForFinished(KILL_GRACE_MS):
                process.kill()
                process.waitForFinished(5000)

    def _on_terminate_timer_timeout(self) -> None:
        if self.process is not None:
            log.info("the training child did not stop in time: terminating it")
            self._force(self.process.terminate)
            self._kill_timer.start()

    def _on_kill_timer_timeout(self) -> None:
        if self.process is not None:
            log.warning("the training child ignored the request to end: killing it")
            self.process.kill()

    def _force(self, end_it: Callable[[], None]) -> None:
        """End the child with a signal; the run then counts as stopped by force."""
        if self.child is not None:
            self.child.forced = True
        end_it()

    # -- the child's output ------------------------------------------------------------------

    def _on_process_ready_read_standard_output(self) -> None:
        process = self.process
        if process is None:
            return
        while process.canReadLine():
            self._read_line(bytes(process.readLine().data()))

    def _read_line(self, raw: bytes) -> None:
        assert self.child is not None
        event = self.child.read_line(raw)
        if event is not None:
            self._announce(event)

    def _announce(self, event: TrainingEvent) -> None:
        self.event_received.emit(event)
        if event.kind == "step":
            self.progress_changed.emit(event.step, event.max_steps, event.eta_s or 0.0)

    def _on_process_error_occurred(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            from ghostdesk.core.training.launcher import could_not_start

            assert self.child is not None
            failed = could_not_start(self.process.errorString())
            self.child.record(failed)
            self._announce(failed)
            self._end(None)

    def _on_process_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        process = self.process
        if process is None:
            return
        while process.canReadLine():
            self._read_line(bytes(process.readLine().data()))
        rest = bytes(process.readAllStandardOutput().data())
        for line in rest.splitlines():
            self._read_line(line)
        # QProcess does not say which signal ended a crashed child.
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        self._end(None if crashed else exit_code)

    def _end(self, exit_code: int | None) -> None:
        process, self.process = self.process, None
        self._terminate_timer.stop()
        self._kill_timer.stop()
        if process is not None:
            process.deleteLater()
        child = self.child
        assert child is not None
        stand_in = child.end(exit_code)
        if stand_in is not None:
            self._announce(stand_in)
        self.run_finished.emit(child.outcome)

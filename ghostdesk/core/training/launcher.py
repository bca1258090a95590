"""The parent side of a training run: how to start the child, read its events, stop it, and
what its end means. The CLI and the window both follow a run through `ChildRun`.

`ChildRun` is the protocol, with no process in it: `begin()` writes run.json and returns the
child's command line (`python -m ghostdesk.core.training run.json`, the same interpreter),
`read_line()` turns a line of the child's stdout into an event, `request_stop()` creates the
run's STOP file, and `end()` says how the run ended (`RunOutcome`), standing in with a Failed
event for a child that died without a last word. Two drivers feed it: `TrainingProcess` here
(subprocess; its `events()` blocks, so a GUI runs it on a worker thread or uses the window's
QProcess driver, ghostdesk/ui/training_run.py).

Stopping: the STOP file is read between steps; the child finishes its step, saves a
checkpoint and reports a Finished "stopped". A child that has not exited `STOP_GRACE_S` later
is terminated, and `KILL_GRACE_S` after that killed; when the STOP file can't be created the
signal goes at once. The child's stderr goes to the run's training.log, never to a pipe that
could fill.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ghostdesk.core.errors import TrainingError
from ghostdesk.core.training.events import (
    Evaluated,
    Failed,
    Finished,
    Preparing,
    Saved,
    Started,
    Step,
    TrainingEvent,
    parse_event,
)
from ghostdesk.core.training.run_config import RunConfig
from ghostdesk.core.training.run_folders import LOG_TAIL_CHARS, resume_point, run_log_tail

STOP_GRACE_S = 120.0
"""How long a stopping child may take to finish its step and save a checkpoint."""
KILL_GRACE_S = 10.0
"""How long a terminated child may take to exit before it is killed."""


def training_command(cfg: RunConfig, python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", "ghostdesk.core.training", str(cfg.config_file)]


def prepare_run(cfg: RunConfig, python: str | None = None) -> list[str]:
    """Check the config, write run.json, clear a STOP left by an earlier attempt, and return
    the child's command line."""
    from ghostdesk.core.training.run_lock import refuse_if_running

    cfg.validate()
    refuse_if_running(cfg.home)
    cfg.save()
    cfg.stop_file.unlink(missing_ok=True)
    return training_command(cfg, python)


def child_env(cfg: RunConfig, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: this one, plus the data folder and unbuffered UTF-8 I/O."""
    env = dict(os.environ)
    env["GHOSTDESK_HOME"] = cfg.home
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra or {})
    return env


def could_not_start(error: object) -> Failed:
    """What a child that could not be started at all (no interpreter, no permission) means."""
    return Failed(reason=f"The training process could not start: {error}",
                  hint="Reinstall GhostDesk.")


@dataclass(frozen=True)
class RunOutcome:
    """How one attempt of a run ended, for a person."""

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


class ChildRun:
    """One attempt of a run as its parent follows it: what the child reported so far (the
    window shows a run from its start when opened in the middle of it), whether a stop was
    asked for, and how it ended."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.events: list[TrainingEvent] = []
        self.steps: list[Step] = []
        self.stage = ""
        """The set-up work going on before the first step ("" once training runs)."""
        self.started: Started | None = None
        self.evaluated: Evaluated | None = None
        self.saved: Saved | None = None
        self.last_word: Finished | Failed | None = None
        """The child's Finished or Failed event."""
        self.stop_requested = False
        self.forced = False
        """The child was terminated or killed (after a stop request, or from here)."""
        self.outcome: RunOutcome | None = None
        self._started_at = time.monotonic()

    @property
    def last_step(self) -> Step | None:
        return self.steps[-1] if self.steps else None

    def begin(self, python: str | None = None) -> list[str]:
        """Write run.json, clear an old STOP, mark the start in training.log; the child's
        command line. Raises GhostDeskError for a config that can't run."""
        argv = prepare_run(self.cfg, python)
        self._started_at = time.monotonic()
        with contextlib.suppress(OSError), open(self.cfg.log_file, "ab") as log:
            log.write(f"\n--- start {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
        return argv

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return child_env(self.cfg, extra)

    # -- what the child says -----------------------------------------------------------------

    def read_line(self, raw: str | bytes) -> TrainingEvent | None:
        """The event a line of the child's stdout holds, recorded; None for anything else (a
        stray line a library printed)."""
        if not raw.strip():
            return None
        try:
            event = parse_event(raw)
        except (ValueError, TypeError):
            return None
        self.record(event)
        return event

    def record(self, event: TrainingEvent) -> None:
        self.events.append(event)
        if isinstance(event, Step):
            self.steps.append(event)
            self.stage = ""
        elif isinstance(event, Started):
            self.started = event
            self.stage = ""
        elif isinstance(event, Preparing):
            self.stage = event.stage
        elif isinstance(event, Evaluated):
            self.evaluated = event
        elif isinstance(event, Saved):
            self.saved = event
        elif isinstance(event, Finished | Failed):
            self.last_word = event

    # -- stopping ----------------------------------------------------------------------------

    def request_stop(self) -> bool:
        """Create the STOP file: the child stops after its current step and saves a
        checkpoint first. False when the file can't be made: then only a signal stops it."""
        self.stop_requested = True
        try:
            self.cfg.stop_file.parent.mkdir(parents=True, exist_ok=True)
            self.cfg.stop_file.touch()
        except OSError:
            return False
        return True

    # -- the end -----------------------------------------------------------------------------

    def end(self, exit_code: int | None) -> Failed | None:
        """Note how the child exited and settle `outcome`. `exit_code` is negative for a
        signal (-9: killed), None when the process crashed without a code. Returns the Failed
        event (recorded) that stands in for a child that died without a last word, or None."""
        self.outcome = self._outcome(exit_code)
        if self.last_word is None and self.outcome.status == "failed":
            o = self.outcome
            stand_in = Failed(reason=o.reason, hint=o.hint, detail=o.detail)
            self.record(stand_in)
            return stand_in
        return None

    def _outcome(self, exit_code: int | None) -> RunOutcome:
        cfg = self.cfg
        step = self.steps[-1].step if self.steps else 0
        seconds = time.monotonic() - self._started_at
        end = self.last_word
        if isinstance(end, Finished):
            return RunOutcome(status=end.status, run_id=cfg.run_id, adapter_id=end.adapter_id,
                              step=end.step or step, seconds=end.seconds or seconds)
        if end is not None:
            return RunOutcome(status="failed", run_id=cfg.run_id, reason=end.reason,
                              hint=end.hint, detail=end.detail, step=step, seconds=seconds)
        hint = ("Resume the run to go on from its last checkpoint."
                if resume_point(cfg) is not None else "Start the training again.")
        if self.stop_requested and (self.forced or exit_code == 0):
            # Asked to stop and had to be ended: stopped all the same, from the person's side.
            reason = "The training did not stop in time and was ended." if self.forced else ""
            return RunOutcome(status="stopped", run_id=cfg.run_id, step=step, seconds=seconds,
                              reason=reason, hint=hint)
        return RunOutcome(status="failed", run_id=cfg.run_id, reason=death_reason(exit_code),
                          hint=hint, detail=run_log_tail(cfg).strip(), step=step,
                          seconds=seconds)


def death_reason(exit_code: int | None) -> str:
    """What a child's exit without a last word means."""
    if exit_code is None:
        return "The training process crashed or was ended from outside."
    if exit_code < 0:
        return f"The training process was ended from outside (signal {-exit_code})."
    if exit_code == 0:
        return "The training process ended without reporting a result."
    return f"The training process crashed (exit code {exit_code})."


class TrainingProcess:
    """One started training child, through subprocess (the CLI, the benchmarks, tests)."""

    def __init__(self, run: ChildRun, popen: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.run = run
        self.cfg = run.cfg
        self._popen = popen
        self._log = log

    @classmethod
    def start(cls, cfg: RunConfig, *, python: str | None = None,
              env: dict[str, str] | None = None) -> TrainingProcess:
        """Write run.json and start the child. Raises TrainingError when it can't start."""
        run = ChildRun(cfg)
        command = run.begin(python)
        log = open(cfg.log_file, "ab")  # noqa: SIM115 - closed when the child is reaped
        kwargs: dict[str, Any] = {}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            # Ctrl+C in the parent's terminal must not reach the child unasked: the parent
            # decides whether to stop it gracefully.
            kwargs["start_new_session"] = True
        try:
            popen = subprocess.Popen(command, stdout=subprocess.PIPE,
                                     stderr=log, stdin=subprocess.DEVNULL,
                                     env=run.environment(env), **kwargs)
        except OSError as err:
            log.close()
            failed = could_not_start(err)
            raise TrainingError(failed.reason, hint=failed.hint) from err
        return cls(run, popen, log)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    @property
    def running(self) -> bool:
        return self._popen.poll() is None

    @property
    def log_path(self) -> Path:
        return self.cfg.log_file

    @property
    def outcome(self) -> RunOutcome | None:
        """How the run ended, once events() has run out."""
        return self.run.outcome

    def events(self) -> Iterator[TrainingEvent]:
        """The child's events until it exits. When it dies without a last word (killed, a
        crash in native code), a Failed event says so, with the end of its log."""
        stream = self._popen.stdout
        assert stream is not None
        for raw in stream:
            event = self.run.read_line(raw)
            if event is not None:
                yield event
        code = self._popen.wait()
        self._close_log()
        if self.run.outcome is None:
            stand_in = self.run.end(code)
            if stand_in is not None:
                yield stand_in

    def request_stop(self) -> None:
        """Ask the child to stop after the current step (it saves a checkpoint first)."""
        if not self.run.request_stop() and self.running:
            self._terminate()

    def stop(self, timeout: float = STOP_GRACE_S) -> int | None:
        """Stop gracefully, waiting up to `timeout` seconds for the current step and the
        checkpoint; then terminate, then kill. Returns the exit code."""
        if not self.running:
            return self.returncode
        self.request_stop()
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self._terminate()
        try:
            return self._popen.wait(KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            self.run.forced = True
            self._popen.kill()
            return self._popen.wait()

    def kill(self) -> int:
        """End the child at once (no checkpoint beyond the last periodic one)."""
        if self.running:
            self.run.forced = True
            self._popen.kill()
        code = self._popen.wait()
        self._close_log()
        return code

    def wait(self, timeout: float | None = None) -> int:
        return self._popen.wait(timeout)

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return run_log_tail(self.cfg, chars)

    def _terminate(self) -> None:
        self.run.forced = True
        with contextlib.suppress(OSError):
            self._popen.terminate()

    def _close_log(self) -> None:
        with contextlib.suppress(OSError):
            self._log.close()

    def __enter__(self) -> TrainingProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.running:
            self.stop()
        self._close_log()
        if self._popen.stdout is not None:
            self._popen.stdout.close()

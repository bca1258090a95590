"""The parent side of a training run: start the child, read its events, stop it.

`TrainingProcess.start(cfg)` saves run.json and starts `python -m ghostdesk.core.training
run.json` with the same interpreter. `events()` yields the child's events as they arrive (a
blocking generator: run it on a worker thread in a GUI). `stop()` asks for a graceful stop
(the STOP file, read between steps, then a checkpoint), waits, then terminates and finally
kills. The child's stderr goes to the run's training.log, never to a pipe that could fill.

The GUI may use QProcess instead: `training_command(cfg)` is the command line, and
`events.parse_event` turns each stdout line into an event.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ghostdesk.core.errors import TrainingError
from ghostdesk.core.training.events import TERMINAL, Failed, TrainingEvent, parse_event
from ghostdesk.core.training.job import valid_checkpoints
from ghostdesk.core.training.run_config import RunConfig

_LOG_TAIL = 2000


def training_command(cfg: RunConfig, python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", "ghostdesk.core.training", str(cfg.config_file)]


def prepare_run(cfg: RunConfig, python: str | None = None) -> list[str]:
    """Check the config, write run.json, clear a STOP left by an earlier attempt, and return
    the child's command line (for a QProcess: also send its stderr to `cfg.log_file`)."""
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


class TrainingProcess:
    """One started training child."""

    def __init__(self, cfg: RunConfig, popen: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.cfg = cfg
        self._popen = popen
        self._log = log
        self._terminal_seen = False

    @classmethod
    def start(cls, cfg: RunConfig, *, python: str | None = None,
              env: dict[str, str] | None = None) -> TrainingProcess:
        """Write run.json and start the child. Raises TrainingError when it can't start."""
        command = prepare_run(cfg, python)
        log = open(cfg.log_file, "ab")  # noqa: SIM115 - closed when the child is reaped
        log.write(f"\n--- start {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
        log.flush()
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
                                     env=child_env(cfg, env), **kwargs)
        except OSError as err:
            log.close()
            raise TrainingError(f"Could not start the training process: {err}",
                                hint="Reinstall GhostDesk.") from err
        return cls(cfg, popen, log)

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

    def events(self) -> Iterator[TrainingEvent]:
        """The child's events until it exits. When it dies without a last word (killed, a
        crash in native code), a Failed event says so, with the end of its log."""
        stream = self._popen.stdout
        assert stream is not None
        for raw in stream:
            try:
                event = parse_event(raw)
            except ValueError:
                continue  # not an event: a stray line from a library
            if event.kind in TERMINAL:
                self._terminal_seen = True
            yield event
        code = self._popen.wait()
        self._close_log()
        if not self._terminal_seen:
            self._terminal_seen = True
            yield Failed(reason=_death_reason(code),
                         hint="Start the training again to resume from its last checkpoint."
                         if valid_checkpoints(self.cfg.checkpoint_dir) else
                         "Start the training again.",
                         detail=self.log_tail())

    def request_stop(self) -> None:
        """Ask the child to stop after the current step (it saves a checkpoint first)."""
        try:
            self.cfg.stop_file.parent.mkdir(parents=True, exist_ok=True)
            self.cfg.stop_file.touch()
        except OSError:
            pass
        if os.name != "nt" and self.running:
            # SIGTERM is read between steps as well (on Windows it would be a hard kill).
            with contextlib.suppress(OSError):
                self._popen.terminate()

    def stop(self, timeout: float = 120.0) -> int | None:
        """Stop gracefully, waiting up to `timeout` seconds for the current step and the
        checkpoint; then terminate, then kill. Returns the exit code."""
        if not self.running:
            return self.returncode
        self.request_stop()
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self._popen.terminate()
        try:
            return self._popen.wait(10)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            return self._popen.wait()

    def kill(self) -> int:
        """End the child at once (no checkpoint beyond the last periodic one)."""
        if self.running:
            self._popen.kill()
        code = self._popen.wait()
        self._close_log()
        return code

    def wait(self, timeout: float | None = None) -> int:
        return self._popen.wait(timeout)

    def log_tail(self, chars: int = _LOG_TAIL) -> str:
        return run_log_tail(self.cfg, chars)

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


def _death_reason(code: int) -> str:
    if code < 0:
        return f"The training process was ended from outside (signal {-code})."
    if code == 0:
        return "The training process ended without reporting a result."
    return f"The training process crashed (exit code {code})."


# --- runs on disk ------------------------------------------------------------------------


def run_log_tail(cfg: RunConfig, chars: int = _LOG_TAIL) -> str:
    """The end of a run's training.log (what the child wrote to stderr); "" when unreadable."""
    try:
        with open(cfg.log_file, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - chars))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def last_checkpoint_step(cfg: RunConfig) -> int:
    """The step of the run's newest complete checkpoint (0: none, nothing to resume)."""
    from ghostdesk.core.training.job import checkpoint_step

    found = valid_checkpoints(cfg.checkpoint_dir)
    return checkpoint_step(found[-1]) if found else 0


def runs_folder(home: str | Path) -> Path:
    return Path(home) / "training"


def resumable_runs(home: str | Path) -> list[RunConfig]:
    """Runs that stopped or were killed with a checkpoint and no adapter yet, newest first."""
    out = []
    folder = runs_folder(home)
    if not folder.is_dir():
        return out
    for run_dir in sorted(folder.iterdir(), reverse=True):
        if not (run_dir / "run.json").is_file():
            continue
        try:
            cfg = RunConfig.load(run_dir / "run.json")
        except Exception:
            continue
        if valid_checkpoints(cfg.checkpoint_dir):
            out.append(cfg)
    return out


def discard_run(cfg: RunConfig) -> None:
    """Delete a run's folder (its checkpoints and log). Its adapter, if saved, stays. A run
    that is training now is refused (TrainingError): stop it first."""
    from ghostdesk.core.training.run_lock import running_run

    holder = running_run(cfg.home)
    if holder is not None and holder.run_id == cfg.run_id:
        raise TrainingError(f"Run {cfg.run_id} is training now, so it can't be discarded.",
                            hint="Stop it first; a stopped run can be discarded.")
    shutil.rmtree(cfg.run_dir, ignore_errors=True)

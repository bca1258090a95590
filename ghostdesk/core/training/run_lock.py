"""One training run at a time per data folder.

Two runs at once would each need the model's memory (and the GPU), and a run deleted while it
trains would lose its checkpoints under it. The training child holds `<home>/training/RUNNING`
(its run id, pid and process start time) for as long as it runs; the window and the CLI read
it before starting or discarding a run. A lock left by a process that died is stale: the pid
is gone, or now belongs to a process that started later.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ghostdesk.core.errors import TrainingError

LOCK_NAME = "RUNNING"


@dataclass(frozen=True)
class LockHolder:
    run_id: str
    pid: int
    started: float
    """The process's start time (seconds since the epoch), to tell a reused pid apart."""


def lock_path(home: str | Path) -> Path:
    return Path(home) / "training" / LOCK_NAME


def _process_start(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:
        return None


def _read(path: Path) -> LockHolder | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return LockHolder(str(raw["run_id"]), int(raw["pid"]), float(raw["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(holder: LockHolder) -> bool:
    started = _process_start(holder.pid)
    return started is not None and abs(started - holder.started) < 2.0


def running_run(home: str | Path) -> LockHolder | None:
    """The run training now in this data folder, or None."""
    holder = _read(lock_path(home))
    return holder if holder is not None and _alive(holder) else None


def refuse_if_running(home: str | Path, *, doing: str = "start another run") -> None:
    holder = running_run(home)
    if holder is not None:
        raise TrainingError(
            f"Training run {holder.run_id} is still in progress, so GhostDesk can't {doing}.",
            hint="Wait for it to finish, or stop it (Stop in Settings → Training, or Ctrl+C "
                 "where `ghostdesk train` runs).")


@contextlib.contextmanager
def hold_training_lock(home: str | Path, run_id: str) -> Iterator[None]:
    """Hold the data folder's training lock for this process, or raise TrainingError when a
    live run holds it. A stale lock is taken over."""
    path = lock_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"run_id": run_id, "pid": os.getpid(), "started": _process_start(os.getpid()) or 0.0}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is not None and _alive(holder) and holder.pid != os.getpid():
                refuse_if_running(home, doing=f"start run {run_id}")
            path.unlink(missing_ok=True)  # stale, or half-written by a process that died
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        break
    else:
        raise TrainingError("Could not take the training lock.",
                            hint=f"Delete {path} if no training is running.")
    try:
        yield
    finally:
        if _read(path) == LockHolder(run_id, me["pid"], me["started"]):
            path.unlink(missing_ok=True)

"""A run's folder on disk: its checkpoints, where it would resume, its log, and the runs that
can resume.

Each run lives in `<home>/training/<run_id>/` (run.json, the exported feedback, training.log,
checkpoints/). The child writes it; the CLI and the window only read it through these
functions, so what a checkpoint is and how its state is stored is known in one place.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ghostdesk.core.errors import TrainingError
from ghostdesk.core.training.run_config import RunConfig

LOG_TAIL_CHARS = 2000
"""How much of the end of training.log goes with a failure that has no message of its own."""


def checkpoint_step(checkpoint: Path) -> int:
    """The step a `checkpoint-<step>` folder was saved at (ValueError for other names)."""
    prefix, _, step = checkpoint.name.partition("-")
    if prefix != "checkpoint":
        raise ValueError(f"not a checkpoint folder: {checkpoint.name}")
    return int(step)


def _trainer_state(checkpoint: Path) -> dict | None:
    """The checkpoint's trainer_state.json (transformers writes it last); None when it is
    missing or unreadable."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def valid_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first. transformers writes trainer_state.json last, so a
    checkpoint without a readable one was cut short (a kill while saving)."""
    found = []
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        if not entry.is_dir() or not entry.name.startswith("checkpoint-"):
            continue
        try:
            step = checkpoint_step(entry)
        except ValueError:
            continue
        if _trainer_state(entry) is not None and (entry / "adapter_model.safetensors").is_file():
            found.append((step, entry))
    return [p for _, p in sorted(found)]


def discard_incomplete_checkpoints(folder: Path) -> None:
    """Delete the checkpoints a kill cut short, so that none is resumed from."""
    good = set(valid_checkpoints(folder))
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.is_dir() and entry.name.startswith("checkpoint-") and entry not in good:
                shutil.rmtree(entry, ignore_errors=True)


@dataclass(frozen=True)
class ResumePoint:
    """Where a stopped or killed run goes on: its newest complete checkpoint."""

    checkpoint: Path
    step: int
    max_steps: int
    """The steps the run planned, as its trainer recorded them (0: not recorded)."""


def resume_point(cfg: RunConfig) -> ResumePoint | None:
    """The run's newest complete checkpoint, or None (nothing trained yet to resume)."""
    found = valid_checkpoints(cfg.checkpoint_dir)
    if not found:
        return None
    newest = found[-1]
    step, max_steps = checkpoint_step(newest), 0
    state = _trainer_state(newest) or {}
    try:
        step = int(state.get("global_step") or step)
        max_steps = int(state.get("max_steps") or 0)
    except (TypeError, ValueError):
        pass
    return ResumePoint(newest, step, max_steps)


def last_checkpoint_step(cfg: RunConfig) -> int:
    """The step of the run's newest complete checkpoint (0: none, nothing to resume)."""
    point = resume_point(cfg)
    return point.step if point is not None else 0


def run_log_tail(cfg: RunConfig, chars: int = LOG_TAIL_CHARS) -> str:
    """The end of a run's training.log (what the child wrote to stderr); "" when unreadable."""
    try:
        with open(cfg.log_file, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - chars))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


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


def discard_unless_resumable(cfg: RunConfig) -> None:
    """Delete a run's folder when it holds no checkpoint: a run cancelled or stopped before
    its first checkpoint has nothing to resume, and its exported feedback is no use."""
    if resume_point(cfg) is None:
        discard_run(cfg)

"""What the Training tab reads from disk in one background call: the feedback counts and the
method Auto would pick, whether CUDA is there, the paused runs, the adapters, and a run
training now in this data folder (this window's, or e.g. `ghostdesk train`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ghostdesk.core.training.planner import DataSummary
    from ghostdesk.core.training.registry import AdapterRecord
    from ghostdesk.core.training.run_config import RunConfig


@dataclass(frozen=True)
class PausedRun:
    """A stopped or interrupted run that can go on from its newest checkpoint."""

    cfg: RunConfig
    step: int
    max_steps: int

    def describe(self) -> str:
        when = _run_time(self.cfg.run_id)
        of = f" of {self.max_steps}" if self.max_steps else ""
        return (
            f"{self.cfg.method.upper()} run{' from ' + when if when else ''}, "
            f"stopped at step {self.step}{of}"
        )


@dataclass(frozen=True)
class TrainingOverview:
    """Everything the Training tab shows that is read from disk, in one background call."""

    summary: DataSummary
    auto_method: str
    auto_reason: str
    cuda: bool
    paused: list[PausedRun]
    adapters: list[AdapterRecord]
    active_id: str | None
    rollback_to: AdapterRecord | None
    running_run_id: str = ""
    """A run training in this data folder now (this window's, or e.g. `ghostdesk train`)."""


def load_overview(
    planner: Any, home: Any, registry: Any, cuda: Callable[[], bool]
) -> TrainingOverview:
    """Reads the whole feedback ledger and the data folder: call off the GUI thread."""
    from ghostdesk.core.training.run_folders import resumable_runs, resume_point
    from ghostdesk.core.training.run_lock import running_run

    summary = planner.summary()
    method, reason = planner.resolve_method("auto", summary)
    holder = running_run(home)
    running = holder.run_id if holder is not None else ""
    paused = []
    for cfg in resumable_runs(home):
        point = resume_point(cfg)
        # A run training now has checkpoints too, but it is not paused.
        if cfg.run_id != running and point is not None:
            paused.append(PausedRun(cfg, point.step, point.max_steps))
    return TrainingOverview(
        summary=summary,
        auto_method=method,
        auto_reason=reason,
        cuda=cuda(),
        paused=paused,
        adapters=registry.list(),
        active_id=registry.active_id,
        rollback_to=registry.rollback_target(),
        running_run_id=running,
    )


def _run_time(run_id: str) -> str:
    try:
        return datetime.strptime(run_id[4:19], "%Y%m%d-%H%M%S").strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return ""

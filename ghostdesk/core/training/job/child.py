"""The training child process around the job: `python -m ghostdesk.core.training RUN.json`
reads run.json, takes the data folder's training lock, listens for a stop, runs the job, and
writes its events as JSON lines on stdout (everything else goes to stderr, the run's log)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.training.events import Failed, TrainingEvent
from ghostdesk.core.training.job.stop import StopSignal
from ghostdesk.core.training.job.training_job import Emit, TrainingJob
from ghostdesk.core.training.run_config import RunConfig


def child_main(argv: list[str]) -> int:
    """`python -m ghostdesk.core.training RUN.json`: events on stdout, all else on stderr."""
    if len(argv) != 1:
        print("usage: python -m ghostdesk.core.training RUN.json", file=sys.stderr)
        return 2
    # Keep the real stdout for events only; anything a library prints (progress bars,
    # warnings, native llama.cpp logs) goes to stderr, which the parent keeps as the log.
    events_fd = os.dup(1)
    os.dup2(2, 1)
    events = os.fdopen(events_fd, "w", encoding="utf-8", buffering=1)
    sys.stdout = sys.stderr
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network from training
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("DISABLE_MLFLOW_INTEGRATION", "TRUE")
    os.environ.setdefault("WANDB_DISABLED", "true")
    try:
        return run_from_file(argv[0], event_writer(events))
    finally:
        events.flush()


def run_from_file(path: str | Path, emit: Emit) -> int:
    """Load run.json and run it (the child's entry point, minus the stdout plumbing)."""
    try:
        cfg = RunConfig.load(path)
    except GhostDeskError as err:
        emit(Failed(reason=err.message, hint=err.hint or ""))
        return 1
    # The parent removes a STOP file left from an earlier attempt before starting us.
    stop = StopSignal(cfg.stop_file)
    stop.install_handlers()
    from ghostdesk.core.training.run_lock import hold_training_lock

    try:
        with hold_training_lock(cfg.home, cfg.run_id):
            return TrainingJob(cfg, emit, stop).run()
    except GhostDeskError as err:  # another run holds the data folder
        emit(Failed(reason=err.message, hint=err.hint or ""))
        return 1


def event_writer(stream: Any) -> Emit:
    """An emit function that writes each event as one flushed line."""
    from ghostdesk.core.training.events import encode

    lock = threading.Lock()

    def emit(event: TrainingEvent) -> None:
        line = encode(event) + "\n"
        with lock:
            stream.write(line)
            stream.flush()

    return emit

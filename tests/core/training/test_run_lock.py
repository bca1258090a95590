"""One training at a time per data folder; a lock left by a dead run never blocks the next."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ghostdesk.core.errors import TrainingError
from ghostdesk.core.training.launcher import prepare_run
from ghostdesk.core.training.run_config import RunConfig
from ghostdesk.core.training.run_folders import discard_run
from ghostdesk.core.training.run_lock import (
    hold_training_lock,
    lock_path,
    refuse_if_running,
    running_run,
)

_HOLDER = """
import sys, time
from ghostdesk.core.training.run_lock import hold_training_lock
with hold_training_lock(sys.argv[1], "run-a"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def other_process_training(tmp_path: Path):
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def _cfg(home: Path, run_id: str) -> RunConfig:
    return RunConfig(train_file=str(home / "t.jsonl"), chat_model=str(home / "m.gguf"),
                     home=str(home), run_id=run_id)


def test_a_second_run_is_refused_while_one_trains(tmp_path: Path,
                                                  other_process_training) -> None:
    holder = running_run(tmp_path)
    assert holder is not None and holder.run_id == "run-a"
    with (pytest.raises(TrainingError, match="run-a is still in progress"),
          hold_training_lock(tmp_path, "run-b")):
        pass
    with pytest.raises(TrainingError, match="still in progress"):
        prepare_run(_cfg(tmp_path, "run-b"))
    assert not (tmp_path / "training" / "run-b" / "run.json").exists()
    # The training run's own folder can't be deleted under it; another one can.
    (tmp_path / "training" / "run-a").mkdir(parents=True)
    with pytest.raises(TrainingError, match="training now"):
        discard_run(_cfg(tmp_path, "run-a"))
    assert (tmp_path / "training" / "run-a").is_dir()
    (tmp_path / "training" / "run-c").mkdir()
    discard_run(_cfg(tmp_path, "run-c"))
    assert not (tmp_path / "training" / "run-c").exists()


def test_a_killed_runs_lock_is_taken_over(tmp_path: Path, other_process_training) -> None:
    other_process_training.send_signal(signal.SIGKILL)
    other_process_training.wait()
    assert lock_path(tmp_path).exists() and running_run(tmp_path) is None
    refuse_if_running(tmp_path)
    with hold_training_lock(tmp_path, "run-b"):
        assert running_run(tmp_path).run_id == "run-b"
    assert not lock_path(tmp_path).exists()


@pytest.mark.parametrize("content", ["", "{not json", json.dumps(
    # this very pid, but a process start time long before it: the pid was reused
    {"run_id": "old", "pid": os.getpid(), "started": time.time() - 10_000_000})])
def test_a_damaged_or_reused_pid_lock_is_stale(tmp_path: Path, content: str) -> None:
    lock_path(tmp_path).parent.mkdir(parents=True)
    lock_path(tmp_path).write_text(content, encoding="utf-8")
    assert running_run(tmp_path) is None
    with hold_training_lock(tmp_path, "new"):
        assert running_run(tmp_path).run_id == "new"

"""The parent's side of the protocol, without a process: lines into events, the stop request,
and what the end of a run means (the CLI and the window both rely on these)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ghostdesk.core.training import events as ev
from ghostdesk.core.training.launcher import ChildRun, death_reason
from ghostdesk.core.training.run_config import RunConfig, build_run_config
from ghostdesk.core.training.run_folders import resume_point


@pytest.fixture
def cfg(tmp_path: Path) -> RunConfig:
    home = tmp_path / "home"
    train = tmp_path / "train.jsonl"
    train.write_text("{}\n", encoding="utf-8")
    return build_run_config(method="kto", train_file=train, chat_model=tmp_path / "chat.gguf",
                            home=home, n_train=20, device="cpu",
                            run_id="run-20260301-140203-abc123")


def _checkpoint(cfg: RunConfig, step: int, state: dict | None) -> None:
    folder = cfg.checkpoint_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if state is not None:
        (folder / "trainer_state.json").write_text(json.dumps(state), encoding="utf-8")
    (folder / "adapter_model.safetensors").write_bytes(b"w")


def test_lines_become_events_and_stray_lines_are_ignored(cfg: RunConfig) -> None:
    run = ChildRun(cfg)
    step = ev.Step(step=3, max_steps=60, loss=0.5, lr=2e-4)
    lines = [ev.encode(ev.Preparing(stage="Loading…")).encode(), b"some library chatter\n",
             b"\n", b'{"event": "step"}\n', b'{"event": "nonsense"}\n', ev.encode(step)]
    got = [run.read_line(line) for line in lines]
    assert [e.kind if e else None for e in got] == ["preparing", None, None, None, None, "step"]
    assert run.events == [got[0], got[5]]
    assert run.last_step == step and run.stage == ""  # a step ends the set-up stage


def test_a_last_word_decides_the_outcome(cfg: RunConfig) -> None:
    run = ChildRun(cfg)
    run.read_line(ev.encode(ev.Step(step=5, max_steps=5, loss=0.4, lr=2e-4)))
    run.read_line(ev.encode(ev.Finished(status="completed", adapter_id="a1", step=5,
                                        seconds=30.0)))
    assert run.end(0) is None
    assert (run.outcome.status, run.outcome.adapter_id, run.outcome.step) == ("completed", "a1", 5)

    failed = ChildRun(cfg)
    failed.read_line(ev.encode(ev.Failed(reason="The disk is full.", hint="Free space.")))
    assert failed.end(1) is None  # its own word, not a stand-in
    assert (failed.outcome.status, failed.outcome.reason) == ("failed", "The disk is full.")


@pytest.mark.parametrize(("code", "reason"), [
    (3, "The training process crashed (exit code 3)."),
    (-9, "The training process was ended from outside (signal 9)."),
    (0, "The training process ended without reporting a result."),
    (None, "The training process crashed or was ended from outside."),
])
def test_a_death_without_a_last_word_is_a_failure_with_the_log_tail(
        cfg: RunConfig, code: int | None, reason: str) -> None:
    run = ChildRun(cfg)
    run.begin()
    with open(cfg.log_file, "a", encoding="utf-8") as log:
        log.write("RuntimeError: CUDA error: boom\n")
    stand_in = run.end(code)
    assert death_reason(code) == reason
    assert isinstance(stand_in, ev.Failed) and stand_in.reason == reason
    assert "CUDA error: boom" in stand_in.detail and run.events[-1] is stand_in
    assert run.outcome.status == "failed" and run.outcome.hint == "Start the training again."


def test_a_stop_that_had_to_be_forced_is_still_a_stop(cfg: RunConfig) -> None:
    run = ChildRun(cfg)
    run.begin()
    assert run.request_stop() and cfg.stop_file.exists()
    run.forced = True
    _checkpoint(cfg, 10, {"global_step": 10, "max_steps": 60})
    assert run.end(-15) is None  # no made-up failure
    assert run.outcome.status == "stopped"
    assert run.outcome.reason == "The training did not stop in time and was ended."
    assert run.outcome.hint == "Resume the run to go on from its last checkpoint."

    quiet = ChildRun(cfg)
    quiet.request_stop()
    assert quiet.end(0) is None and quiet.outcome.status == "stopped"
    assert quiet.outcome.reason == ""
    crashed = ChildRun(cfg)
    crashed.request_stop()
    assert crashed.end(1) is not None and crashed.outcome.status == "failed"


def test_begin_writes_run_json_clears_an_old_stop_and_marks_the_log(cfg: RunConfig) -> None:
    cfg.run_dir.mkdir(parents=True)
    cfg.stop_file.touch()
    argv = ChildRun(cfg).begin(python="/usr/bin/python3")
    assert argv == ["/usr/bin/python3", "-m", "ghostdesk.core.training", str(cfg.config_file)]
    assert RunConfig.load(cfg.config_file) == cfg
    assert not cfg.stop_file.exists()
    assert "--- start" in cfg.log_file.read_text(encoding="utf-8")
    env = ChildRun(cfg).environment({"EXTRA": "1"})
    assert env["GHOSTDESK_HOME"] == cfg.home and env["PYTHONUNBUFFERED"] == "1"
    assert env["EXTRA"] == "1"


def test_the_resume_point_is_the_newest_complete_checkpoint(cfg: RunConfig) -> None:
    assert resume_point(cfg) is None
    _checkpoint(cfg, 10, {"global_step": 10, "max_steps": 60})
    _checkpoint(cfg, 20, {"global_step": 20})
    _checkpoint(cfg, 30, None)  # cut short while saving: no trainer_state.json
    point = resume_point(cfg)
    assert point is not None and point.checkpoint.name == "checkpoint-20"
    assert (point.step, point.max_steps) == (20, 0)

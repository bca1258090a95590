"""The training child on a tiny llama: events, graceful stop, kill -9 and resume, refusals,
and a full disk while saving. (Steps take milliseconds here; the bundled model's run is in
test_learning_e2e.py.)"""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from ghostdesk.core.training.events import Failed, Finished, Saved, Started, Step
from ghostdesk.core.training.job.training_job import TrainingJob
from ghostdesk.core.training.launcher import TrainingProcess
from ghostdesk.core.training.registry import AdapterRegistry
from ghostdesk.core.training.run_folders import discard_run, resumable_runs, valid_checkpoints
from tests.core.training.conftest import TinyLlama, tiny_run_config, write_jsonl


@pytest.mark.parametrize("how", ["stop file", "SIGTERM"])
def test_stop_is_graceful_and_resumable(tmp_path: Path, tiny_llama: TinyLlama,
                                        kto_files: Any, how: str) -> None:
    train, held = kto_files()
    cfg = tiny_run_config(tmp_path / "home", tiny_llama, train, held, max_steps=5000,
                          checkpoint_every=1000)
    with TrainingProcess.start(cfg) as proc:
        events: list[Any] = []
        asked = False
        for event in proc.events():
            events.append(event)
            if isinstance(event, Step) and event.step >= 2 and not asked:
                asked = True
                if how == "stop file":
                    cfg.stop_file.touch()  # what a GUI on any platform does
                else:
                    os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(60)
    kinds = [e.kind for e in events]
    assert kinds[0] == "preparing" and "started" in kinds, kinds
    started = next(e for e in events if isinstance(e, Started))
    assert (started.method, started.base, started.device) == ("kto", "hf-folder", "cpu")
    assert started.max_steps == 5000 and started.resumed_from_step == 0
    steps = [e for e in events if isinstance(e, Step)]
    assert all(s.loss == s.loss and s.tokens_per_second > 0 for s in steps)
    assert steps[1].reward_margin is not None
    last = events[-1]
    assert isinstance(last, Finished) and last.status == "stopped", events[-3:]
    assert code == 0
    # A checkpoint at the step it stopped at, although none was due (every 1000 steps).
    assert last.checkpoint and Path(last.checkpoint).name == f"checkpoint-{last.step}"
    assert 2 <= last.step < 5000
    assert [c.run_id for c in resumable_runs(cfg.home)] == [cfg.run_id]
    assert AdapterRegistry.in_home(cfg.home).list() == []  # no adapter from a stopped run
    discard_run(cfg)
    assert not cfg.run_dir.exists() and resumable_runs(cfg.home) == []


def test_kill_9_then_resume_from_last_checkpoint(tmp_path: Path, tiny_llama: TinyLlama,
                                                 kto_files: Any) -> None:
    train, held = kto_files()
    cfg = tiny_run_config(tmp_path / "home", tiny_llama, train, held, max_steps=60,
                          checkpoint_every=3)
    proc = TrainingProcess.start(cfg)
    seen = 0
    for event in proc.events():
        if isinstance(event, Step):
            seen = event.step
            if seen >= 7:
                os.kill(proc.pid, signal.SIGKILL)
                break
    assert proc.wait(30) == -signal.SIGKILL
    proc.kill()
    ckpts = valid_checkpoints(cfg.checkpoint_dir)
    assert ckpts, "periodic checkpoints were written"
    last_ckpt = int(ckpts[-1].name.split("-")[1])
    assert last_ckpt % 3 == 0 and 6 <= last_ckpt <= seen + 3

    # A kill while a checkpoint was being written leaves a folder without trainer_state.json:
    # it is not resumed from, and it is cleaned up.
    broken = cfg.checkpoint_dir / f"checkpoint-{last_ckpt + 30}"
    broken.mkdir()
    (broken / "adapter_model.safetensors").write_bytes(b"half")

    with TrainingProcess.start(cfg) as again:
        events = list(again.events())
    started = next(e for e in events if isinstance(e, Started))
    assert started.resumed_from_step == last_ckpt
    steps = [e.step for e in events if isinstance(e, Step)]
    assert steps[0] == last_ckpt + 1 and steps[-1] == 60
    assert not broken.exists()
    assert isinstance(events[-1], Finished) and events[-1].status == "completed", events[-2:]
    saved = next(e for e in events if isinstance(e, Saved))
    assert Path(saved.gguf).is_file()
    # A completed run keeps no checkpoints and is not offered for resuming.
    assert not cfg.checkpoint_dir.exists() and resumable_runs(cfg.home) == []


def test_too_little_data_fails_with_how_many_more(tmp_path: Path, tiny_llama: TinyLlama,
                                                  kto_files: Any) -> None:
    from ghostdesk.bench.learning import synthetic_kto_records

    train = write_jsonl(tmp_path / "few.jsonl", synthetic_kto_records(6))
    _, held = kto_files()
    cfg = tiny_run_config(tmp_path / "home", tiny_llama, train, held)
    with TrainingProcess.start(cfg) as proc:
        events = list(proc.events())
        assert proc.wait(30) == 1
    failed = events[-1]
    assert isinstance(failed, Failed)
    assert failed.reason.startswith("Training needs 10 more rated replies: it has 6 (3 👍, 3 👎)")
    assert "Rate more replies" in failed.hint


def test_missing_data_file_and_bad_line(tmp_path: Path, tiny_llama: TinyLlama,
                                        kto_files: Any) -> None:
    train, held = kto_files()
    cfg = tiny_run_config(tmp_path / "home", tiny_llama, tmp_path / "nope.jsonl", held)
    events: list[Any] = []
    assert TrainingJob(cfg, events.append).run() == 1
    assert isinstance(events[-1], Failed) and "Could not read the training data" in \
        events[-1].reason
    bad = tmp_path / "bad.jsonl"
    bad.write_text(train.read_text() + '{"prompt": "x"}\n', encoding="utf-8")
    cfg = tiny_run_config(tmp_path / "home", tiny_llama, bad, held)
    events = []
    assert TrainingJob(cfg, events.append).run() == 1
    assert "Line 17 of the training data bad.jsonl is not a valid KTO example" in \
        events[-1].reason


def test_disk_full_while_saving_fails_cleanly(tmp_path: Path, tiny_llama: TinyLlama,
                                              kto_files: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC while the adapter is written: a clear Failed event, no adapter folder, no
    staging leftovers, the previous adapter untouched."""
    import gguf

    train, held = kto_files()
    home = tmp_path / "home"
    cfg = tiny_run_config(home, tiny_llama, train, held, max_steps=2, eval_generations=0)
    first: list[Any] = []
    assert TrainingJob(cfg, first.append).run() == 0
    registry = AdapterRegistry.in_home(home)
    (previous,) = registry.list()
    before = previous.gguf_path.read_bytes()

    def full_disk(*_a: Any, **_k: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", full_disk)
    cfg2 = tiny_run_config(home, tiny_llama, train, held, max_steps=2, eval_generations=0)
    events: list[Any] = []
    assert TrainingJob(cfg2, events.append).run() == 1
    failed = events[-1]
    assert isinstance(failed, Failed)
    assert failed.reason.startswith("The disk is full"), failed
    assert "nothing was changed" in failed.reason
    assert not any(isinstance(e, Saved) for e in events)
    assert [r.id for r in registry.list()] == [previous.id]
    assert sorted(p.name for p in registry.folder.iterdir()) == sorted(
        [previous.id, "index.json"])
    assert previous.gguf_path.read_bytes() == before


def test_run_file_round_trip(tmp_path: Path, tiny_llama: TinyLlama, kto_files: Any) -> None:
    train, held = kto_files()
    cfg = tiny_run_config(tmp_path / "home", tiny_llama, train, held)
    path = cfg.save()
    raw = json.loads(path.read_text())
    assert raw["method"] == "kto" and raw["base"] == str(tiny_llama.hf_dir)
    from ghostdesk.core.training.run_config import RunConfig

    assert RunConfig.load(path) == cfg


def test_a_new_run_is_measured_against_the_adapter_it_would_replace(
        tmp_path: Path, tiny_llama: TinyLlama, kto_files: Any) -> None:
    from ghostdesk.core.training.events import Evaluated
    from ghostdesk.core.training.job.evaluate import evaluate_saved_adapter

    train, held = kto_files()
    home = tmp_path / "home"
    first: list[Any] = []
    cfg = tiny_run_config(home, tiny_llama, train, held, max_steps=3, eval_generations=0)
    assert TrainingJob(cfg, first.append).run() == 0
    registry = AdapterRegistry.in_home(home)
    (one,) = registry.list()
    ev1 = next(e for e in first if isinstance(e, Evaluated))
    assert ev1.previous_adapter == "" and ev1.previous_accuracy == 0.5
    assert ev1.adopt is None or ev1.adopt is False  # "ask": never adopted without the user

    second: list[Any] = []
    cfg2 = tiny_run_config(home, tiny_llama, train, held, max_steps=6, eval_generations=1,
                           parent_adapter=one.id, adopt="auto")
    assert TrainingJob(cfg2, second.append).run() == 0
    ev2 = next(e for e in second if isinstance(e, Evaluated))
    assert ev2.previous_adapter == one.id
    assert ev2.previous_accuracy == pytest.approx(ev1.accuracy, abs=1e-3)  # same data, same adapter
    assert ev2.adopt is ev2.recommended
    assert ev2.samples and ev2.samples[0]["prompt"]
    two = next(r for r in registry.list() if r.id != one.id)
    assert two.parent == one.id
    assert two.metrics["previous_accuracy"] == pytest.approx(ev2.previous_accuracy, abs=1e-3)

    # the same measurement later, from the saved adapters (`ghostdesk adapters eval`)
    result = evaluate_saved_adapter(home, two.id, held, chat_model=tiny_llama.gguf,
                                    compare_with=one.id, base=str(tiny_llama.hf_dir))
    assert result.candidate.accuracy == pytest.approx(ev2.accuracy, abs=1e-3)
    assert result.previous.accuracy == pytest.approx(ev2.previous_accuracy, abs=1e-3)


def _pairs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"prompt": liked["prompt"], "chosen": liked["completion"],
             "rejected": disliked["completion"]}
            for liked, disliked in zip(records[0::2], records[1::2], strict=True)]


@pytest.mark.parametrize("method", ["dpo", "sft"])
def test_dpo_and_sft_runs_complete(tmp_path: Path, tiny_llama: TinyLlama, method: str) -> None:
    from ghostdesk.bench.learning import synthetic_kto_records
    from ghostdesk.core.training.events import Evaluated
    from ghostdesk.core.training.run_config import build_run_config

    def records(n: int, **kw: Any) -> list[dict[str, Any]]:
        kto = synthetic_kto_records(n, **kw)
        if method == "dpo":
            return _pairs(kto)
        return [{"messages": r["prompt"] + r["completion"]} for r in kto if r["label"]]

    train = write_jsonl(tmp_path / "train.jsonl", records(20))
    held = write_jsonl(tmp_path / "eval.jsonl", records(8, seed=1, offset=20))
    cfg = build_run_config(method=method, train_file=train, eval_file=held,
                           chat_model=tiny_llama.gguf, home=tmp_path / "home", n_train=10,
                           device="cpu", base=str(tiny_llama.hf_dir),
                           overrides=dict(max_steps=3, max_length=160, eval_generations=0,
                                          threads=1))
    events: list[Any] = []
    assert TrainingJob(cfg, events.append).run() == 0, events[-1]
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.step for s in steps] == [1, 2, 3]
    assert (steps[-1].reward_margin is not None) == (method == "dpo")
    ev = next(e for e in events if isinstance(e, Evaluated))
    assert ev.examples == 4
    (record,) = AdapterRegistry.in_home(cfg.home).list()
    assert record.method == method and record.gguf_path.is_file()

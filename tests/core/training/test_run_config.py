"""RunConfig: presets by data size and device, Advanced overrides, checks, and the refusal
that says how much more feedback is needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostdesk.core.errors import SettingsError, TrainingError
from ghostdesk.core.training.run_config import (
    RunConfig,
    build_run_config,
    missing_examples,
    planned_steps,
    recommend_preset,
    refuse_if_too_little_data,
)


def _cfg(tmp_path: Path, **kw: object) -> RunConfig:
    args = dict(method="kto", train_file=tmp_path / "t.jsonl", chat_model=tmp_path / "m.gguf",
                home=tmp_path, n_train=40, device="cpu")
    args.update(kw)
    return build_run_config(**args)  # type: ignore[arg-type]


def test_presets_follow_data_size_and_device() -> None:
    assert recommend_preset(20, cuda=False) == "quick"
    assert recommend_preset(50_000, cuda=False) == "quick"
    assert recommend_preset(200, cuda=True) == "standard"
    assert recommend_preset(5000, cuda=True) == "thorough"


def test_auto_preset_and_overrides(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    assert (cfg.preset, cfg.lora_r, cfg.batch_size, cfg.max_length) == ("quick", 8, 2, 256)
    assert cfg.run_id.startswith("run-") and cfg.run_dir == tmp_path / "training" / cfg.run_id
    cfg = _cfg(tmp_path, device="cuda", n_train=5000)
    assert (cfg.preset, cfg.lora_r, cfg.epochs) == ("thorough", 32, 3.0)
    cfg = _cfg(tmp_path, preset="standard", overrides={"lora_r": 4, "learning_rate": 3e-4})
    assert (cfg.preset, cfg.lora_r, cfg.learning_rate, cfg.lora_alpha) == ("standard", 4, 3e-4,
                                                                           32.0)
    with pytest.raises(SettingsError, match="Unknown training setting"):
        _cfg(tmp_path, overrides={"lora_rank": 4})
    with pytest.raises(SettingsError) as err:
        _cfg(tmp_path, overrides={"learning_rate": 0.5})
    assert "learning_rate" in err.value.message and "at most 0.01" in err.value.hint
    with pytest.raises(SettingsError, match="batch_size"):
        _cfg(tmp_path, overrides={"batch_size": 1})  # KTO pairs the examples of a batch
    assert _cfg(tmp_path, method="dpo", overrides={"batch_size": 1}).batch_size == 1


def test_planned_steps(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)  # quick: batch 2, 1 epoch, at most 60 steps
    assert planned_steps(cfg, 16) == 8
    assert planned_steps(cfg, 1000) == 60
    cfg.max_steps = 5
    assert planned_steps(cfg, 1000) == 5


def test_round_trip_through_run_json(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, overrides={"target_modules": ["q_proj", "v_proj"]})
    loaded = RunConfig.load(cfg.save())
    assert loaded == cfg and loaded.target_modules == ("q_proj", "v_proj")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TrainingError, match="Could not read the training run file"):
        RunConfig.load(tmp_path / "bad.json")


def test_too_little_data_says_how_many_more() -> None:
    with pytest.raises(TrainingError) as err:
        refuse_if_too_little_data("kto", examples=0, desirable=0, undesirable=0)
    assert err.value.message == ("Training needs 16 more rated replies: it has 0 (0 👍, 0 👎), "
                                 "and needs at least 16, with at least 4 👍 and 4 👎.")
    assert "Rate more replies" in err.value.hint
    # enough in total, but almost no dislikes
    assert missing_examples("kto", examples=20, desirable=19, undesirable=1) == 3
    with pytest.raises(TrainingError, match="needs 3 more rated replies"):
        refuse_if_too_little_data("kto", examples=20, desirable=19, undesirable=1)
    with pytest.raises(TrainingError, match="needs 1 more pair of rated versions"):
        refuse_if_too_little_data("dpo", examples=7)
    with pytest.raises(TrainingError, match="needs 8 more rewritten replies"):
        refuse_if_too_little_data("sft", examples=0)
    refuse_if_too_little_data("kto", examples=16, desirable=8, undesirable=8)
    assert missing_examples("dpo", examples=8) == 0


def test_training_settings_give_overrides(tmp_path: Path) -> None:
    from ghostdesk.core.training.run_config import TrainingSettings

    s = TrainingSettings(lora_r=4, max_steps=12)
    s.validate()
    assert s.overrides() == {"lora_r": 4, "max_steps": 12}
    cfg = _cfg(tmp_path, preset=s.preset, adopt=s.adopt, overrides=s.overrides())
    assert (cfg.lora_r, cfg.max_steps, cfg.lora_alpha) == (4, 12, 16.0)
    with pytest.raises(SettingsError, match="adopt"):
        TrainingSettings(adopt="sometimes").validate()


def test_cuda_is_probed_in_another_process_unless_torch_is_here(monkeypatch) -> None:
    import subprocess
    import sys

    from ghostdesk.core.training import run_config

    calls = []

    def run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="some warning\nTrue\n", stderr="")

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(run_config, "_cuda_answer", None)
    monkeypatch.setattr(run_config.subprocess, "run", run)
    assert run_config.cuda_available() is True
    assert run_config.cuda_available() is True  # asked once per process
    assert len(calls) == 1 and calls[0][0] == sys.executable
    assert "torch.cuda.is_available()" in calls[0][-1]
    monkeypatch.setattr(run_config, "_cuda_answer", None)
    monkeypatch.setattr(run_config.subprocess, "run", lambda cmd, **kw:
                        subprocess.CompletedProcess(cmd, 1, stdout="", stderr="no torch"))
    assert run_config.cuda_available() is False

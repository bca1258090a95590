"""From feedback in a real store to a run folder: method choice, refusals, exports, adoption."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from ghostdesk.core.errors import SettingsError, TrainingError
from ghostdesk.core.feedback.ledger import RewardLedger
from ghostdesk.core.settings import Settings
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import Database
from ghostdesk.core.training.events import Evaluated, Saved
from ghostdesk.core.training.planner import (
    AdoptionTracker,
    DataSummary,
    MethodData,
    TrainingPlanner,
    choose_method,
)
from ghostdesk.core.training.registry import AdapterRegistry


def _summary(kto: tuple[int, int] = (0, 0), dpo: int = 0, sft: int = 0) -> DataSummary:
    return DataSummary(kto=MethodData("kto", sum(kto), 3, desirable=kto[0], undesirable=kto[1]),
                       dpo=MethodData("dpo", dpo, 1), sft=MethodData("sft", sft, 0))


@pytest.mark.parametrize(("summary", "method", "words"), [
    (_summary(kto=(10, 10)), "kto", "10 👍 and 10 👎"),
    (_summary(kto=(10, 10), dpo=12), "dpo", "pairs of versions"),   # 24 weighted > 20
    (_summary(kto=(30, 30), dpo=8), "kto", "DPO would have 8 pairs"),
    (_summary(sft=9), "sft", "rewrote"),
    (_summary(kto=(20, 1)), "kto", "No method has enough"),         # 👎 missing
    (_summary(), "kto", "No method has enough"),
    (_summary(dpo=7), "dpo", "No method has enough"),               # 1 short of 8
])
def test_auto_picks_the_method_with_most_ratings_and_says_why(summary: DataSummary,
                                                              method: str, words: str) -> None:
    chosen, why = choose_method(summary)
    assert chosen == method
    assert words in why


def test_method_data_says_how_many_more() -> None:
    assert MethodData("kto", 20, 0, desirable=17, undesirable=3).missing == 1
    assert MethodData("kto", 10, 0, desirable=5, undesirable=5).missing == 6
    assert MethodData("dpo", 8, 0).ready


class _Feedback:
    """Rated replies in a real store: one conversation per exchange (so both sides of the
    held-out split get some)."""

    def __init__(self, db: Database) -> None:
        self.store = ConversationStore(db)
        self.ledger = RewardLedger(db)

    def rated(self, n: int, action: str) -> None:
        for i in range(n):
            cid = self.store.create_conversation().id
            self.store.add_message(cid, "user", f"{action} question {i}")
            reply = self.store.add_message(cid, "assistant", f"{action} answer {i}",
                                           generation_settings={"system_prompt": "Be kind."})
            self.ledger.rate(reply.id, action)

    def pairs(self, n: int) -> None:
        for i in range(n):
            cid = self.store.create_conversation().id
            user = self.store.add_message(cid, "user", f"pair question {i}")
            first = self.store.add_message(cid, "assistant", f"curt {i}")
            second = self.store.add_message(cid, "assistant", f"warm {i}", parent_id=user.id)
            self.ledger.rate(first.id, "down")
            self.ledger.rate(second.id, "up")


@pytest.fixture
def feedback(db: Database) -> _Feedback:
    return _Feedback(db)


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def planner(db: Database, tmp_path: Path, settings: Settings) -> TrainingPlanner:
    model = tmp_path / "chat.gguf"
    model.write_bytes(b"GGUF")
    home = tmp_path / "home"
    return TrainingPlanner(db, home, settings=lambda: settings,
                           registry=AdapterRegistry.in_home(home), chat_model=lambda: str(model))


def _runs(planner: TrainingPlanner) -> list[Path]:
    folder = planner.home / "training"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_too_little_feedback_is_refused_with_how_much_more_and_leaves_no_run(
        planner: TrainingPlanner, feedback: _Feedback) -> None:
    feedback.rated(3, "up")
    with pytest.raises(TrainingError, match=r"needs \d+ more rated repl"):
        planner.plan()
    assert _runs(planner) == []


def test_a_planned_run_trains_on_the_exported_feedback(planner: TrainingPlanner,
                                                       feedback: _Feedback,
                                                       settings: Settings) -> None:
    feedback.rated(24, "up")
    feedback.rated(24, "down")
    settings.training.lora_r = 4
    planned = planner.plan(steps=3, device="cpu")
    cfg = planned.cfg
    assert (cfg.method, cfg.lora_r, cfg.max_steps, cfg.device) == ("kto", 4, 3, "cpu")
    assert "KTO" in planned.method_reason
    assert cfg.config_file.is_file() and _runs(planner) == [cfg.run_dir]
    train = [json.loads(line) for line in Path(cfg.train_file).read_text().splitlines()]
    assert cfg.data_counts["train_examples"] == len(train) == planned.data.train
    assert {r["label"] for r in train} == {True, False}
    # The exact chat-time system text recorded with each reply is the training prompt's.
    assert all(r["prompt"][0] == {"role": "system", "content": "Be kind."} for r in train)
    if cfg.eval_file:
        held = Path(cfg.eval_file).read_text().splitlines()
        assert cfg.data_counts["eval_examples"] == len(held) == planned.data.eval
        assert not {line for line in held} & {json.dumps(r) for r in train}
    assert cfg.parent_adapter == ""


def test_auto_chooses_dpo_from_rated_versions(planner: TrainingPlanner,
                                              feedback: _Feedback) -> None:
    feedback.pairs(14)
    planned = planner.plan(device="cpu")
    assert planned.cfg.method == "dpo"
    assert "versions" in planned.method_reason
    first = json.loads(Path(planned.cfg.train_file).read_text().splitlines()[0])
    assert first["chosen"][0]["content"].startswith("warm")


def test_an_explicit_method_without_its_data_is_refused(planner: TrainingPlanner,
                                                        feedback: _Feedback) -> None:
    feedback.rated(24, "up")
    feedback.rated(24, "down")
    with pytest.raises(TrainingError, match="more rewritten"):
        planner.plan(method="sft")
    assert _runs(planner) == []


def test_missing_chat_model_and_bad_advanced_value_leave_nothing(
        planner: TrainingPlanner, feedback: _Feedback, settings: Settings,
        tmp_path: Path) -> None:
    feedback.rated(24, "up")
    feedback.rated(24, "down")
    settings.training.learning_rate = 0.5  # above the 0.01 a LoRA tolerates
    with pytest.raises(SettingsError, match="learning_rate"):
        planner.plan(device="cpu")
    assert _runs(planner) == []
    settings.training.learning_rate = 0.0
    (tmp_path / "chat.gguf").unlink()
    with pytest.raises(TrainingError, match="chat model file is missing"):
        planner.plan(device="cpu")
    assert _runs(planner) == []


def test_a_new_run_is_compared_with_the_active_adapter(planner: TrainingPlanner,
                                                       feedback: _Feedback) -> None:
    feedback.rated(24, "up")
    feedback.rated(24, "down")
    planner.registry = SimpleNamespace(active_id="adapter-7")
    assert planner.plan(device="cpu").cfg.parent_adapter == "adapter-7"


def _evaluated(adopt: bool | None) -> Evaluated:
    return Evaluated(accuracy=0.8, reward_margin=1.0, examples=10, previous_accuracy=0.5,
                     previous_reward_margin=0.0, previous_adapter="", recommended=bool(adopt),
                     adopt=adopt, reason="better")


@pytest.mark.parametrize(("adopt", "decision"), [(True, "activate"), (None, "ask"),
                                                 (False, "keep")])
def test_adoption_follows_the_evaluation_once_saved(adopt: bool | None, decision: str) -> None:
    tracker = AdoptionTracker()
    assert tracker.feed(_evaluated(adopt)) is None
    assert tracker.decision is None
    assert tracker.feed(Saved(adapter_id="a1", path="/x", gguf="/x/adapter.gguf")) == decision
    assert tracker.adapter_id == "a1"

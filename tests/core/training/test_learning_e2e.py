"""The whole loop on the bundled Gemma 3 270M: rated replies with a clear taste in a real store
-> the planner exports them (Auto picks KTO) -> a short KTO run in the child process ->
held-out evaluation -> adapter GGUF in the registry -> adopted and hot-swapped into the chat.

The run is short (12 steps of 2 examples, 64 tokens) to stay within a few minutes on two CPU
cores; the taste (liked replies offer tea and end with "🙂", disliked ones are curt) is clear
enough for that to move held-out preference accuracy far above chance.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ghostdesk.core.settings import Settings
from ghostdesk.core.store.db import Database
from ghostdesk.core.training.events import (
    Evaluated,
    Finished,
    Saved,
    Started,
    Step,
    TrainingEvent,
)
from ghostdesk.core.training.launcher import TrainingProcess
from ghostdesk.core.training.planner import AdoptionTracker, TrainingPlanner
from ghostdesk.core.training.registry import AdapterRecord, AdapterRegistry
from ghostdesk.core.training.run_config import RunConfig
from tests.core.training.conftest import GemmaBase, link_training_base

pytestmark = pytest.mark.model


@dataclass
class FinishedRun:
    cfg: RunConfig
    events: list[TrainingEvent]
    code: int
    record: AdapterRecord
    decision: str | None
    method_reason: str


def _rate_in_store(db: Database) -> None:
    """16 rated replies on the training side and 8 (on prompts training never sees) in
    held-out conversations, each reply with the system text it was written under."""
    from ghostdesk.bench.learning import synthetic_kto_records
    from ghostdesk.core.feedback.ledger import RewardLedger
    from ghostdesk.core.feedback.split import held_out
    from ghostdesk.core.store.conversations import ConversationStore

    store, ledger = ConversationStore(db), RewardLedger(db)
    todo = {False: synthetic_kto_records(16), True: synthetic_kto_records(8, seed=1, offset=20)}
    while todo[False] or todo[True]:
        cid = store.create_conversation().id
        side = todo[held_out(cid)]
        if not side:
            continue  # that side is full: this conversation stays empty
        rec = side.pop(0)
        store.add_message(cid, "user", rec["prompt"][1]["content"])
        reply = store.add_message(cid, "assistant", rec["completion"][0]["content"],
                                  generation_settings={"system_prompt":
                                                       rec["prompt"][0]["content"]})
        ledger.rate(reply.id, "up" if rec["label"] else "down")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, gemma_training_base: GemmaBase,
            model_path: Path) -> Iterator[FinishedRun]:
    folder = tmp_path_factory.mktemp("learning")
    home = folder / "home"
    link_training_base(home, gemma_training_base.root)
    db = Database.open(folder / "ghostdesk.db", folder / "backups")
    settings = Settings()
    t = settings.training
    t.adopt, t.device, t.max_steps, t.max_length, t.learning_rate = "auto", "cpu", 12, 64, 5e-4
    registry = AdapterRegistry.in_home(home)
    try:
        _rate_in_store(db)
        planner = TrainingPlanner(db, home, settings=lambda: settings, registry=registry,
                                  chat_model=lambda: str(model_path))
        planned = planner.plan()
    finally:
        db.close()
    cfg = replace(planned.cfg, eval_generations=1, generation_max_tokens=8)
    tracker = AdoptionTracker()
    with TrainingProcess.start(cfg) as proc:
        events = []
        for event in proc.events():
            events.append(event)
            tracker.feed(event)
        code = proc.wait(60)
    saved = [e for e in events if isinstance(e, Saved)]
    assert saved, f"no adapter saved: {events[-1]}\n{proc.log_tail()}"
    yield FinishedRun(cfg, events, code, registry.get(saved[0].adapter_id), tracker.decision,
                      planned.method_reason)


def test_auto_chose_kto_from_the_ratings(trained: FinishedRun) -> None:
    assert trained.cfg.method == "kto"
    assert "8 👍 and 8 👎" in trained.method_reason
    assert trained.cfg.data_counts == {"train_examples": 16, "eval_examples": 8,
                                       "desirable": 8, "undesirable": 8}


def test_run_reports_every_stage(trained: FinishedRun) -> None:
    kinds = [e.kind for e in trained.events]
    assert trained.code == 0
    assert kinds[-4:] == ["evaluated", "preparing", "saved", "finished"], kinds
    started = next(e for e in trained.events if isinstance(e, Started))
    assert started.base == "gguf" and started.train_examples == 16
    assert started.eval_examples == 8 and started.max_steps == 12
    # the training text is tokenized exactly as llama.cpp tokenizes the chat
    assert started.chat_tokens_checked == 4 and started.chat_tokens_match
    steps = [e for e in trained.events if isinstance(e, Step)]
    assert [s.step for s in steps] == list(range(1, 13))
    assert all(s.reward_margin is not None and s.tokens_per_second > 0 for s in steps)
    finished = trained.events[-1]
    assert isinstance(finished, Finished) and finished.status == "completed"
    assert finished.adapter_id == trained.record.id and finished.peak_rss_mb > 100


def test_held_out_preference_accuracy_is_far_above_chance(trained: FinishedRun) -> None:
    ev = next(e for e in trained.events if isinstance(e, Evaluated))
    print(f"held-out preference accuracy {ev.accuracy:.0%} (chance 50%), reward margin "
          f"{ev.reward_margin:.2f}, {ev.examples} examples")
    assert ev.examples == 8
    assert ev.accuracy >= 0.75
    assert ev.reward_margin > 0
    assert ev.previous_accuracy == 0.5 and ev.recommended and ev.adopt is True
    assert trained.decision == "activate"
    assert ev.samples and set(ev.samples[0]) == {"prompt", "base", "adapter"}
    assert trained.record.metrics["accuracy"] == pytest.approx(ev.accuracy, abs=1e-3)


def test_adapter_is_recorded(trained: FinishedRun, model_path: Path) -> None:
    from ghostdesk.core.llm.fingerprint import sha256_file

    rec = trained.record
    assert rec.method == "kto" and rec.architecture == "gemma3"
    assert rec.base_sha256 == sha256_file(model_path)
    assert rec.data_counts["desirable"] == 8 and rec.data_counts["eval_examples"] == 8
    assert rec.gguf_path.is_file() and (rec.peft_path / "adapter_model.safetensors").is_file()
    assert not (rec.peft_path / "adapter_model.bin").exists()


def test_hot_swap_changes_the_reply_and_deactivating_restores_it(
        trained: FinishedRun, model_path: Path, tmp_path: Path) -> None:
    from ghostdesk.core.llm.adapters import AdapterSlot
    from ghostdesk.core.llm.engine import LlamaEngine
    from ghostdesk.core.llm.fingerprint import model_sha256
    from ghostdesk.core.llm.gpu_probe import GpuStatus
    from ghostdesk.core.llm.types import ChatMessage, GenerationStats, SamplingParams
    from ghostdesk.core.settings import ModelSettings
    from ghostdesk.core.training.registry import activate_adapter, deactivate_adapter

    engine = LlamaEngine.load(ModelSettings(n_ctx=512, n_threads=2), cache_dir=tmp_path,
                              gpu=GpuStatus.cpu_only(), probe=False)
    slot = AdapterSlot(engine, model_sha256=lambda: model_sha256(model_path, tmp_path))
    prompt = engine.render([ChatMessage("system", "You are Ghost, a companion."),
                            ChatMessage("user", "I have a long evening ahead.")])

    def reply() -> str:
        return "".join(engine.stream(prompt, SamplingParams.greedy(24), GenerationStats()))

    registry = AdapterRegistry.in_home(trained.cfg.home)
    try:
        base = reply()
        active = activate_adapter(registry, slot, trained.record.id)  # the adoption
        assert slot.active == active and active.id == trained.record.id
        assert registry.active_id == trained.record.id
        adapted = reply()
        deactivate_adapter(registry, slot)
        assert slot.active is None and registry.active_id is None
        again = reply()
    finally:
        slot.close()
        engine.close()
    print(f"base: {base!r}\nadapter: {adapted!r}\nswap took {active.seconds * 1000:.1f} ms")
    assert adapted != base
    assert again == base


def test_the_adapter_shows_the_liked_trait_more_often_than_the_base(
        trained: FinishedRun, model_path: Path, tmp_path: Path) -> None:
    """Greedy replies to 16 prompts that were never rated: how many offer tea or end with 🙂
    (what the liked replies did), with and without the adapter."""
    from ghostdesk.bench.learning import _QUESTIONS
    from ghostdesk.core.llm.adapters import AdapterSlot
    from ghostdesk.core.llm.engine import LlamaEngine
    from ghostdesk.core.llm.gpu_probe import GpuStatus
    from ghostdesk.core.llm.types import ChatMessage, GenerationStats, SamplingParams
    from ghostdesk.core.settings import ModelSettings

    engine = LlamaEngine.load(ModelSettings(n_ctx=512, n_threads=2), cache_dir=tmp_path,
                              gpu=GpuStatus.cpu_only(), probe=False)
    slot = AdapterSlot(engine)
    unseen = _QUESTIONS[24:40]  # training rated 0-7, the held-out set 20-23

    def trait_count() -> int:
        hits = 0
        for question in unseen:
            prompt = engine.render([ChatMessage("system", "You are Ghost, a companion."),
                                    ChatMessage("user", question)])
            text = "".join(engine.stream(prompt, SamplingParams.greedy(24), GenerationStats()))
            hits += "tea" in text.lower() or "🙂" in text
        return hits

    try:
        base = trait_count()
        slot.activate(trained.record.gguf_path)
        adapted = trait_count()
    finally:
        slot.close()
        engine.close()
    print(f"replies showing the liked trait: base {base}/{len(unseen)}, "
          f"adapter {adapted}/{len(unseen)}")
    assert adapted >= base + 5

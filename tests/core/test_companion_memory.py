"""Memory in the turn: recall into the prompt, provenance on the reply, crystallization."""

import pytest

from ghostdesk.core.companion import (
    MemoriesCrystallized,
    MemoriesRecalled,
    ReplySaved,
)
from ghostdesk.services import build_services
from tests.fakes import ScriptedEngine


@pytest.fixture
def services():
    services = build_services()
    yield services
    services.close()


def saved(events):
    return next(e for e in events if isinstance(e, ReplySaved)).message


@pytest.mark.real_embedder
def test_a_fact_told_early_is_recalled_many_turns_later(services):
    engine = ScriptedEngine(n_ctx=400)
    services.settings.sampling.max_tokens = 40
    companion = services.make_companion(engine)
    conv = services.store.create_conversation()
    every = services.memory.settings.crystallize_every
    # Turn 1 tells the fact; the crystallization after turn `every` writes it down.
    engine.enqueue("How lovely!")
    list(companion.send(conv.id, "My sister Mei lives in Chengdu and teaches piano."))
    for i in range(every - 1):
        engine.enqueue(f"Reply {i}.")
        if i == every - 2:
            engine.enqueue("'s sister Mei lives in Chengdu and teaches piano. (5)")
        events = list(companion.send(conv.id, f"Small talk number {i} about the weather."))
    crystallized = [e for e in events if isinstance(e, MemoriesCrystallized)]
    assert crystallized and "Mei" in crystallized[0].result.added[0].text
    # Many more turns: the telling turn is far outside the context window now.
    for i in range(25):
        engine.enqueue(f"Filler reply {i} " + "la " * 10)
        list(companion.send(conv.id, f"Filler message {i} about nothing much " + "hm " * 10))
    engine.enqueue("She lives in Chengdu!")
    events = list(companion.send(conv.id, "Where does my sister Mei live again?"))
    prompt = engine.prompts[-1].text
    assert "My sister Mei lives in Chengdu" not in prompt, "the telling turn was dropped"
    assert "Mei lives in Chengdu" in prompt, "…but the crystal was recalled"
    recalled = next(e for e in events if isinstance(e, MemoriesRecalled)).recall
    reply = saved(events)
    stored = services.memory.recalled_for_message(reply.id)
    assert [r.crystal.id for r in stored] == recalled.crystal_ids
    assert "Chengdu" in stored[0].crystal.text and stored[0].score > 0


def test_memory_off_means_no_recall_and_no_crystals(services):
    services.settings.memory.enabled = False
    engine = ScriptedEngine()
    companion = services.make_companion(engine)
    assert companion.memory is None
    conv = services.store.create_conversation()
    engine.enqueue("ok")
    events = list(companion.send(conv.id, "remember that I love tea"))
    assert not any(isinstance(e, MemoriesRecalled | MemoriesCrystallized) for e in events)


def test_a_manual_crystal_is_recalled_and_its_provenance_kept(services):
    engine = ScriptedEngine()
    companion = services.make_companion(engine)
    crystal = services.memory.add_crystal("The user loves green tea", importance=0.9).crystal
    conv = services.store.create_conversation()
    engine.enqueue("Tea time!")
    events = list(companion.send(conv.id, "The user loves green tea"))
    assert "The user loves green tea" in engine.prompts[-1].text.split("</system>")[0]
    reply = saved(events)
    assert [r.crystal.id for r in services.memory.recalled_for_message(reply.id)] == [crystal.id]
    services.memory.forget(crystal.id)
    engine.enqueue("Hm?")
    list(companion.send(conv.id, "The user loves green tea"))
    assert "green tea" not in engine.prompts[-1].text.split("</system>")[0]


def test_a_broken_memory_never_blocks_the_reply(services, monkeypatch):
    from ghostdesk.core.errors import GhostDeskError

    engine = ScriptedEngine()
    companion = services.make_companion(engine)

    def broken(*args, **kwargs):
        raise GhostDeskError("The embedding model could not be loaded.")

    monkeypatch.setattr(companion.memory, "recall_for", broken)
    conv = services.store.create_conversation()
    engine.enqueue("Still here.")
    events = list(companion.send(conv.id, "hello"))
    problem = next(e for e in events if isinstance(e, MemoriesRecalled))
    assert "could not be loaded" in problem.problem
    assert saved(events).content == "Still here."


def test_training_prompts_are_the_chat_time_prompt_with_its_memories(services):
    """The recalled memories were part of what the model saw: the KTO record carries them,
    and rendering the record gives the exact text the engine was given."""
    from ghostdesk.core.feedback.datasets import DatasetOptions, build_records, load_snapshot
    from ghostdesk.core.llm.types import ChatMessage

    engine = ScriptedEngine()
    companion = services.make_companion(engine)
    services.memory.add_crystal("The user loves green tea", importance=0.9)
    conv = services.store.create_conversation()
    engine.enqueue("Tea time!")
    reply = saved(list(companion.send(conv.id, "The user loves green tea")))
    services.ledger.rate(reply.id, "up")
    services.settings.persona.name = "Renamed later"  # must not leak into old examples
    [record] = build_records("kto", load_snapshot(services.db),
                             DatasetOptions(system_prompt="today's persona", split="all"))
    messages = [ChatMessage(m["role"], m["content"]) for m in record["prompt"]]
    assert "green tea" in messages[0].content and "Ghost" in messages[0].content
    assert engine.render(messages).text == engine.prompts[-1].text

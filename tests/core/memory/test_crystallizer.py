"""Crystallization: the model's answer parsed robustly, facts merged with what is known."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ghostdesk.core.llm.types import ChatEngineInfo
from ghostdesk.core.memory.crystallizer import (
    ANSWER_PREFIX,
    Fact,
    TurnText,
    build_prompt,
    join_prefix,
    parse_facts,
)
from ghostdesk.core.memory.service import MemoryService
from ghostdesk.core.store.conversations import ConversationStore
from tests.fakes import ScriptedEngine

# -- parsing ---------------------------------------------------------------------------------


def test_parse_keeps_facts_and_reads_importance():
    answer = (
        ANSWER_PREFIX + "'s sister is called Mei and lives in Chengdu. (5)\n"
        "- The user works night shifts | 4\n"
        "* The user plays the cello - importance: 2\n"
        "3) The user likes green tea [3/5]\n"
        "- The user has a cat named Pixel, 1\n"
        "- The user lives in Berlin\n"
    )
    assert parse_facts(answer) == [
        Fact("The user's sister is called Mei and lives in Chengdu.", 1.0),
        Fact("The user works night shifts.", 0.8),
        Fact("The user plays the cello.", 0.4),
        Fact("The user likes green tea.", 0.6),
        Fact("The user has a cat named Pixel.", 0.2),
        Fact("The user lives in Berlin.", 0.6),  # no importance given: 3 of 5
    ]


@pytest.mark.parametrize("junk", [
    "",
    "   ",
    "- ",
    "Facts:",
    "Here are the facts:",
    "User: hi there, how are you",
    "Companion: I am fine thank you",
    "- The user's brother is called Tom. (4)",       # the example, copied back
    "- ok",
    "- The user is a user.",                          # says nothing
    "- Does the user like tea?",
    "- 12345 678",
    "- " + "The user really likes " + "very " * 60 + "long lines.",  # overlong
    "<end_of_turn>",
    "none",
])
def test_parse_drops_junk(junk: str):
    assert parse_facts(junk) == []


def test_parse_drops_duplicates_and_caps_the_count():
    repeated = "\n".join(f"- {n}. The user is a cat." for n in range(1, 12))
    assert parse_facts(repeated) == [Fact("The user is a cat.", 0.6)]
    many = "\n".join(f"- The user visited city number {n}" for n in range(20))
    assert len(parse_facts(many, max_facts=8)) == 8


@pytest.mark.parametrize("output,answer", [
    ("'s sister is Mei.", "- The user's sister is Mei."),
    (" works nights.", "- The user works nights."),
    ("User: hello", "User: hello"),
    ("\n- The user sings.", "\n- The user sings."),
])
def test_answer_prefix_is_kept_only_when_continued(output: str, answer: str):
    assert join_prefix(output) == answer


def test_parse_strips_special_tokens_inside_a_line():
    assert parse_facts("- <start_of_turn>The user likes jazz. (4)<end_of_turn>") == [
        Fact("The user likes jazz.", 0.8)]


def test_prompt_leaves_out_the_oldest_turns_to_fit():
    engine = ScriptedEngine(n_ctx=200)
    turns = [TurnText(i, "user" if i % 2 else "assistant", f"message number {i} " * 10)
             for i in range(1, 21)]
    prompt, kept = build_prompt(engine, turns, companion_name="Ghost", max_tokens=60)
    assert 0 < len(kept) < len(turns) and kept[-1] == turns[-1]
    assert engine.count_tokens(prompt.text) + 60 <= 200
    assert prompt.text.endswith(ANSWER_PREFIX)
    assert "Ghost: message number 20" in prompt.text


# -- crystallizing a conversation with a scripted model ---------------------------------------


@pytest.fixture
def chat(store: ConversationStore) -> int:
    return store.create_conversation().id


def _talk(store: ConversationStore, memory: MemoryService, cid: int, turns: int,
          topic: str = "weather") -> list[int]:
    ids = []
    for i in range(turns):
        user = store.add_message(cid, "user", f"{topic} chat line {i}")
        store.add_message(cid, "assistant", f"reply {i}")
        memory.remember_turn(cid, user.content, "reply")
        ids.append(user.id)
    return ids


def test_crystallization_is_due_every_six_turns(memory: MemoryService, store, chat):
    engine = ScriptedEngine()
    dues = []
    for i in range(12):
        user = store.add_message(chat, "user", f"line {i}")
        store.add_message(chat, "assistant", "ok")
        turn = memory.remember_turn(chat, user.content, "ok")
        dues.append(turn.crystallize_due)
        if turn.crystallize_due:
            engine.enqueue(f" enjoys hobby number {i} a lot. (3)")
            memory.crystallize(chat, engine)
            assert memory.pending_turns(chat) == 0
    assert [i for i, due in enumerate(dues, 1) if due] == [6, 12]
    # The second run saw only the six turns after the first.
    second = engine.prompts[1].text
    assert "line 6" in second and "line 5" not in second


def test_parse_merges_a_fact_said_twice():
    answer = ("- The user's sister Mei lives in Chengdu. (2)\n"
              "- the user's sister mei lives in Chengdu (4)")
    assert parse_facts(answer) == [Fact("The user's sister Mei lives in Chengdu.", 0.8)]


def test_near_duplicates_merge_exactly(memory: MemoryService, store, chat):
    engine = ScriptedEngine()
    _talk(store, memory, chat, 3, topic="family")
    engine.enqueue("'s sister Mei lives in Chengdu. (3)\n- The user owns a red bicycle. (2)\n")
    first = memory.crystallize(chat, engine)
    assert [(a.crystal.text, a.merged) for a in first.absorbed] == [
        ("The user's sister Mei lives in Chengdu.", False),
        ("The user owns a red bicycle.", False),
    ]
    sister_id, bike_id = (a.crystal.id for a in first.absorbed)

    told = _talk(store, memory, chat, 2, topic="sister")
    engine.enqueue(
        "'s sister Mei lives in Chengdu! (5)\n"           # more important: its text wins
        "- The user owns a red bicycle (1)\n"             # less important: text kept
        "- The user's sister Mei lives in Chengdu! (5)\n" # said twice: once
    )
    second = memory.crystallize(chat, engine)
    assert [(a.crystal.id, a.merged) for a in second.absorbed] == [
        (sister_id, True), (bike_id, True)]
    assert second.absorbed[0].similarity >= memory.settings.merge_threshold
    sister = memory.get(sister_id)
    assert sister.text == "The user's sister Mei lives in Chengdu!"
    assert sister.importance == pytest.approx(1.0)  # max(0.6, 1.0) + 0.1, capped
    assert set(told) & set(sister.source_message_ids)  # sources are united...
    assert len(sister.source_message_ids) == 2  # ...with the first run's
    bike = memory.get(bike_id)
    assert bike.text == "The user owns a red bicycle." and bike.importance == pytest.approx(0.5)
    assert memory.crystals.count() == 2
    assert memory.check_consistency().ok
    # The merged text's vector replaced the old one in the index as well.
    assert memory.recall_for("The user's sister Mei lives in Chengdu!").crystal_ids[0] == sister_id


def test_equal_importance_keeps_the_longer_text(memory: MemoryService):
    short = memory.add_crystal("mei lives in chengdu", importance=0.6).crystal
    longer = memory.add_crystal("mei lives in chengdu.", importance=0.6)
    assert longer.merged and longer.crystal.id == short.id
    assert longer.crystal.text == "mei lives in chengdu."


def test_crystallize_with_nothing_new_does_not_call_the_model(memory: MemoryService, chat):
    engine = ScriptedEngine()
    result = memory.crystallize(chat, engine)
    assert result.absorbed == () and engine.prompts == []


def test_junk_answer_stores_nothing_but_moves_on(memory: MemoryService, store, chat):
    engine = ScriptedEngine()
    _talk(store, memory, chat, 6)
    engine.enqueue("User: weather chat line 3\n\n- ok\n<end_of_turn>")
    result = memory.crystallize(chat, engine)
    assert result.absorbed == () and memory.crystals.count() == 0
    assert memory.pending_turns(chat) == 0 and result.through_message_id > 0


def test_on_idle_crystallizes_pending_turns(memory: MemoryService, store, chat):
    engine = ScriptedEngine()
    _talk(store, memory, chat, 2)
    engine.enqueue(" likes rainy days a lot. (4)")
    result = memory.on_idle(chat, engine)
    assert result is not None and [c.text for c in result.added] == [
        "The user likes rainy days a lot."]
    assert memory.on_idle(chat, engine) is None  # nothing pending


# -- the real bundled model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from ghostdesk.core.llm.engine import LlamaEngine
    from ghostdesk.core.llm.gpu_probe import GpuStatus
    from ghostdesk.core.settings import ModelSettings

    engine = LlamaEngine.load(ModelSettings(n_ctx=1024), cache_dir=tmp_path_factory.mktemp("c"),
                              gpu=GpuStatus.cpu_only())
    yield engine
    engine.close()


@pytest.mark.model
def test_bundled_model_crystallizes_a_conversation(make_memory, hashing, store, chat, llama):
    assert isinstance(llama.info, ChatEngineInfo)
    memory = make_memory(hashing, crystallize_max_tokens=48)
    for user, reply in [
        ("My sister Mei lives in Chengdu, she is a vet.", "That's lovely! Do you visit her?"),
        ("Once a year. I work as a nurse, mostly night shifts.", "Night shifts are tough."),
    ]:
        store.add_message(chat, "user", user)
        store.add_message(chat, "assistant", reply)
        memory.remember_turn(chat, user, reply)
    result = memory.crystallize(chat, llama, companion_name="Ghost")  # one short generation
    assert result.added, f"no fact parsed from: {result.raw_output!r}"
    stored = memory.list_crystals()
    assert {c.id for c in stored} == {c.id for c in result.added}
    assert all(c.kind == "fact" and c.source_message_ids for c in stored)
    assert memory.check_consistency().ok


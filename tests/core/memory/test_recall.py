"""Resonance recall with the real bundled MiniLM model: a fact told early in a conversation
comes back when it matters many turns later, and the reply records which crystals it used."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ghostdesk.core.memory.clock import ManualClock
from ghostdesk.core.memory.crystal_record import CrystalRecord
from ghostdesk.core.memory.recall import (
    BLOCK_HEADER,
    RecalledCrystal,
    RecallParams,
    rank,
    render_block,
)
from ghostdesk.core.memory.service import MemoryService
from ghostdesk.core.store.conversations import ConversationStore
from tests.fakes import ScriptedEngine

SMALL_TALK = [
    ("What a grey morning. I'm on my second coffee already.", "Coffee and grey skies, cosy!"),
    ("Did you see the football last night?", "I heard it was a close match!"),
    ("I'm thinking of repainting my kitchen green.", "Sage green would look lovely."),
    ("My laptop keeps freezing, it's so annoying.", "Maybe it needs a restart?"),
    ("I tried a new ramen place for lunch.", "Ooh, was the broth good?"),
    ("Work meetings ran late again today.", "That sounds draining."),
    ("I want to read more books this year.", "What genres do you enjoy?"),
    ("The neighbours are having a loud party.", "Earplugs might save the night."),
    ("I finally cleaned out my wardrobe.", "That must feel great."),
    ("Rain again, the garden is soaked.", "At least the plants are happy."),
    ("I'm learning to bake sourdough bread.", "Patience with the starter is key!"),
    ("My phone battery dies so fast now.", "Maybe check the battery health."),
]


def _turn(store: ConversationStore, memory: MemoryService, cid: int, user: str, reply: str):
    u = store.add_message(cid, "user", user)
    r = store.add_message(cid, "assistant", reply)
    return u, r, memory.remember_turn(cid, user, reply)


def test_a_fact_told_early_is_recalled_many_turns_later(
        make_memory, minilm, store: ConversationStore, clock: ManualClock):
    memory = make_memory(minilm)
    engine = ScriptedEngine()
    cid = store.create_conversation().id
    # Turn 1: the fact. The first crystallization (after 6 turns) turns it into a crystal.
    told, _, _ = _turn(store, memory, cid,
                       "My sister Mei just moved to Chengdu, she works there as a vet.",
                       "How exciting for her! Chengdu is a great city.")
    engine.enqueue("'s sister Mei lives in Chengdu and works as a vet. (4)\n"
                   "- The user drinks a lot of coffee. (2)\n- The user is a user.")
    runs = []
    for user, reply in SMALL_TALK:
        clock.advance(minutes=3)
        _, _, turn = _turn(store, memory, cid, user, reply)
        if turn.crystallize_due:
            runs.append(memory.crystallize(cid, engine))
            engine.enqueue("'s kitchen will be painted green. (2)")
    assert len(runs) == 2  # after turns 6 and 12
    assert [c.text for c in runs[0].added] == [
        "The user's sister Mei lives in Chengdu and works as a vet.",
        "The user drinks a lot of coffee.",
    ]  # "The user is a user." says nothing and was dropped
    sister = runs[0].added[0]
    assert sister.source_message_ids == (told.id,)  # provenance back to the message
    assert memory.stats().state_turns == 1 + len(SMALL_TALK)

    question = "Do you remember where my sister lives now?"
    user_msg = store.add_message(cid, "user", question)
    recall = memory.recall_for(question, cid, count_tokens=engine.count_tokens)
    assert recall.crystal_ids and recall.crystal_ids[0] == sister.id
    assert recall.prompt_block.startswith(BLOCK_HEADER + "\n- ")
    assert "Mei lives in Chengdu" in recall.prompt_block
    assert all(r.similarity >= memory.settings.threshold for r in recall.crystals)
    # Unrelated crystals did not resonate.
    assert not any("kitchen" in r.crystal.text for r in recall.crystals)

    reply = store.add_message(cid, "assistant", "Mei lives in Chengdu!", parent_id=user_msg.id)
    assert memory.record_provenance(reply.id, recall) == len(recall.crystals)
    stored = memory.recalled_for_message(reply.id)
    assert [s.crystal.id for s in stored] == recall.crystal_ids
    assert stored[0].rank == 1 and stored[0].score == pytest.approx(recall.crystals[0].similarity)
    recalled = memory.get(sister.id)
    assert recalled.recall_count == 1 and recalled.last_recalled_at == clock()


def test_state_vector_tips_recall_toward_the_conversation(make_memory, minilm,
                                                          store: ConversationStore):
    memory = make_memory(minilm, threshold=0.0, top_k=2)
    memory.add_crystal("The user is training for the Berlin marathon.")
    memory.add_crystal("The user is learning to play the cello.")
    cid = store.create_conversation().id
    ambiguous = "I practised for two hours today."
    for user, reply in [("My long run this weekend is 30 km.", "Great pace!"),
                        ("My running shoes are worn out.", "Time for new ones."),
                        ("Race day is in six weeks!", "You'll be ready.")]:
        _turn(store, memory, cid, user, reply)
    first = memory.recall_for(ambiguous, touch=False).crystals[0].crystal.text
    assert "marathon" in first


def test_nothing_resonates_with_unrelated_small_talk(make_memory, minilm):
    memory = make_memory(minilm)
    memory.add_crystal("The user is allergic to peanuts.")
    memory.add_crystal("The user's mother had knee surgery last spring.")
    for message in ["Tell me a joke", "What's the capital of Peru?", "Good morning!"]:
        assert memory.recall_for(message).crystals == ()


def test_recent_messages_are_not_echoed_back(memory: MemoryService, store: ConversationStore):
    cid = store.create_conversation().id
    said = store.add_message(cid, "user", "remember that my cat is called Pixel")
    memory.remember_message(said.id)
    assert memory.recall_for("my cat is called Pixel", cid).crystals == ()
    for i in range(4):
        store.add_message(cid, "user", f"filler {i}")
        store.add_message(cid, "assistant", f"reply {i}")
    assert memory.recall_for("my cat is called Pixel", cid).crystal_ids  # said long ago
    assert memory.recall_for("my cat is called Pixel").crystal_ids  # no conversation given


def test_preview_does_not_count_as_recalled(memory: MemoryService):
    crystal = memory.add_crystal("the user plays the cello every evening").crystal
    result = memory.recall_for("the user plays the cello every evening", touch=False)
    assert result.crystal_ids == [crystal.id]
    assert memory.get(crystal.id).recall_count == 0


# -- ranking and the prompt block, without a model -------------------------------------------


def _crystal(cid: int, text: str, importance: float = 0.5, days_old: float = 0.0,
             clock: ManualClock | None = None) -> CrystalRecord:
    now = (clock or ManualClock())()
    when = now - timedelta(days=days_old)
    return CrystalRecord(cid, "fact", text, None, importance, False, False, when, when, None,
                         None, 0, ())


def test_rank_filters_by_threshold_and_orders_by_score():
    clock = ManualClock()
    params = RecallParams(top_k=3, threshold=0.3)
    candidates = [
        (_crystal(1, "below threshold", importance=1.0), 0.29),
        (_crystal(2, "plain"), 0.50),
        (_crystal(3, "important", importance=1.0), 0.47),   # +0.05 importance beats plain
        (_crystal(4, "old", days_old=365), 0.52),           # recency lost: 0.52 vs 0.55
        (_crystal(5, "fifth"), 0.31),
    ]
    ranked = rank(candidates, clock(), params)
    assert [r.crystal.id for r in ranked] == [3, 2, 4]
    assert [r.rank for r in ranked] == [1, 2, 3]
    assert ranked[1].score == pytest.approx(0.50 + 0.05)


def test_block_keeps_to_the_token_budget():
    ranked = [RecalledCrystal(_crystal(i, text), 0.5, 0.5, i) for i, text in enumerate(
        ["short fact one", "a much longer fact " * 20, "short fact two"], 1)]

    def words(text: str) -> int:
        return len(text.split())

    block, tokens, included, left = render_block(ranked, words, token_budget=20)
    assert [r.crystal.id for r in included] == [1, 3]  # the long one is skipped, not the rest
    assert [r.rank for r in included] == [1, 2]
    assert [r.crystal.id for r in left] == [2]
    assert tokens == words(block) <= 20
    assert block == f"{BLOCK_HEADER}\n- short fact one\n- short fact two"
    assert render_block(ranked, words, token_budget=3)[0] == ""

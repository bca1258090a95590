"""From a conversation's turns to memories: each finished turn moves the state vector and
counts toward crystallization; when enough are pending, the chat model writes them down as
facts (crystallizer.py), which are taken into memory like any other text (intake.py).

`conversation_memory` keeps, per conversation, the last message already offered to
crystallization and how many turns are pending, so nothing is offered twice across restarts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ghostdesk.core.errors import NotFoundError
from ghostdesk.core.llm.types import ChatEngine
from ghostdesk.core.memory.clock import Clock
from ghostdesk.core.memory.crystal_record import CrystalRecord
from ghostdesk.core.memory.crystallizer import Fact, TurnText, extract_facts
from ghostdesk.core.memory.embedder import Embedder
from ghostdesk.core.memory.index_keeper import IndexKeeper
from ghostdesk.core.memory.intake import Absorbed, CrystalIntake
from ghostdesk.core.memory.settings import MemorySettings
from ghostdesk.core.memory.state import StateStore
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import Conversation, ConversationMemory


@dataclass(frozen=True)
class TurnMemory:
    state_turns: int
    """Turns folded into the state vector so far (all conversations)."""
    pending_turns: int
    """Turns of this conversation not crystallized yet."""
    crystallize_due: bool


@dataclass(frozen=True)
class Crystallization:
    conversation_id: int
    facts: tuple[Fact, ...] = ()
    absorbed: tuple[Absorbed, ...] = ()
    raw_output: str = ""
    through_message_id: int = 0
    seconds: float = 0.0

    @property
    def added(self) -> list[CrystalRecord]:
        return [a.crystal for a in self.absorbed if not a.merged]

    @property
    def merged(self) -> list[CrystalRecord]:
        return [a.crystal for a in self.absorbed if a.merged]


@dataclass(frozen=True, eq=False)
class ConversationCrystallizer:
    """Counts a conversation's turns and crystallizes them when they are due."""

    db: Database
    conversations: ConversationStore
    state: StateStore
    intake: CrystalIntake
    keeper: IndexKeeper
    embedder: Embedder
    settings: MemorySettings
    clock: Clock

    def remember_turn(self, conversation_id: int, user_text: str, reply_text: str,
                      ) -> TurnMemory:
        """Fold a finished turn into the state vector and count it toward crystallization."""
        turn = self.embedder.embed([f"{user_text}\n{reply_text}".strip()])[0]
        with self.db.read_session() as s:
            if s.get(Conversation, conversation_id) is None:
                raise NotFoundError(f"Conversation {conversation_id} does not exist.")
        snapshot = self.state.advance(turn, self.embedder.name, self.settings.alpha)
        with self.db.session() as s:
            row = s.get(ConversationMemory, conversation_id)
            if row is None:
                row = ConversationMemory(conversation_id=conversation_id,
                                         crystallized_through_id=0, pending_turns=0)
                s.add(row)
            row.pending_turns = (row.pending_turns or 0) + 1
            row.updated_at = self.clock()
            pending = row.pending_turns
        return TurnMemory(snapshot.turn_count, pending,
                          pending >= self.settings.crystallize_every)

    def pending_turns(self, conversation_id: int) -> int:
        with self.db.read_session() as s:
            row = s.get(ConversationMemory, conversation_id)
            return row.pending_turns if row else 0

    def crystallize(self, conversation_id: int, engine: ChatEngine, *,
                    companion_name: str) -> Crystallization:
        """Ask the model for facts in this conversation's turns since the last time, and
        take them into memory (near-duplicates merge). Runs the chat model: seconds.
        `companion_name` is how the transcript names the companion's turns."""
        started = time.perf_counter()
        with self.db.read_session() as s:
            row = s.get(ConversationMemory, conversation_id)
            through = row.crystallized_through_id if row else 0
        thread = self.conversations.thread(conversation_id)
        turns = [TurnText(m.id, m.role, m.content) for m in thread
                 if m.id > through and m.role in ("user", "assistant") and m.content.strip()]
        if not turns:
            return Crystallization(conversation_id, through_message_id=through)
        last_id = max(t.message_id for t in turns)
        facts: list[Fact] = []
        raw = ""
        if any(t.role == "user" for t in turns):
            facts, raw = extract_facts(
                engine, turns, companion_name=companion_name,
                max_tokens=self.settings.crystallize_max_tokens,
                max_facts=self.settings.max_facts)
        absorbed: list[Absorbed] = []
        if facts:
            vectors = self.embedder.embed([f.text for f in facts])
            sources = self._best_sources(vectors, [t for t in turns if t.role == "user"])
            for fact, vector, source in zip(facts, vectors, sources, strict=True):
                absorbed.append(self.intake.absorb(fact.text, vector, kind="fact",
                                                   importance=fact.importance,
                                                   source_message_ids=source))
        with self.db.session() as s:
            row = s.get(ConversationMemory, conversation_id)
            if row is None:
                row = ConversationMemory(conversation_id=conversation_id, pending_turns=0)
                s.add(row)
            row.crystallized_through_id = max(last_id, row.crystallized_through_id or 0)
            row.pending_turns = 0
            row.updated_at = self.clock()
        self.keeper.save_soon()
        return Crystallization(conversation_id, tuple(facts), tuple(absorbed), raw, last_id,
                               time.perf_counter() - started)

    def _best_sources(self, facts: np.ndarray, user_turns: Sequence[TurnText],
                      ) -> list[tuple[int, ...]]:
        """For each fact, the user message it most resembles (its provenance)."""
        if not user_turns:
            return [() for _ in range(len(facts))]
        messages = self.embedder.embed([t.content for t in user_turns])
        best = np.argmax(facts @ messages.T, axis=1)
        return [(user_turns[int(b)].message_id,) for b in best]

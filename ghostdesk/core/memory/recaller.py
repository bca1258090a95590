"""Recall for one message: the crystals that resonate with it, and which ones a reply used.

The message is embedded, leaned toward the state vector (state.py), the index proposes
`candidates` neighbours, each is re-read from SQLite (so a crystal forgotten a moment ago is
never recalled, and the similarity comes from SQLite's vector), then ranked and written into
the prompt block (recall.py). Recall only reads: it runs beside changes, without their lock.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from ghostdesk.core.errors import NotFoundError
from ghostdesk.core.memory.clock import Clock
from ghostdesk.core.memory.crystal_record import StoredRecall
from ghostdesk.core.memory.crystals import CrystalStore
from ghostdesk.core.memory.embedder import Embedder
from ghostdesk.core.memory.recall import (
    CountTokens,
    RecalledCrystal,
    RecallResult,
    approx_tokens,
    rank,
    render_block,
)
from ghostdesk.core.memory.recall_log import RecallLog
from ghostdesk.core.memory.settings import MemorySettings
from ghostdesk.core.memory.state import StateStore, recall_query
from ghostdesk.core.memory.vector_index import CrystalIndex
from ghostdesk.core.store.conversations import ConversationStore


@dataclass(frozen=True, eq=False)
class Recaller:
    """Finds the crystals for a message and keeps which ones each reply used."""

    index: CrystalIndex
    crystals: CrystalStore
    recalls: RecallLog
    state: StateStore
    embedder: Embedder
    conversations: ConversationStore
    settings: MemorySettings
    clock: Clock

    def recall_for(self, message_text: str, conversation_id: int | None = None, *,
                   count_tokens: CountTokens | None = None, token_budget: int | None = None,
                   touch: bool = True) -> RecallResult:
        """The crystals that resonate with this message and the state vector, and the
        prompt block that holds them. `touch` counts them as recalled (pass False for a
        preview that does not answer anything)."""
        started = time.perf_counter()
        params = self.settings.recall_params()
        if self.index.count == 0 or not message_text.strip():
            return RecallResult(seconds=time.perf_counter() - started)
        message = self.embedder.embed([message_text])[0]
        state = self.state.load(self.embedder.name, self.embedder.dim)
        query = recall_query(message, state.vector if state else None, self.settings.beta)
        ids, _ = self.index.query(query, self.settings.candidates)
        rows = self.crystals.get_many(ids.tolist(), active_only=True)
        skip = self._made_from_recent_messages(conversation_id, rows.keys())
        # Similarity from SQLite's vector: the index only proposes candidates.
        candidates = [(rows[i][0], float(np.dot(rows[i][1], query)))
                      for i in ids.tolist() if i in rows and i not in skip]
        ranked = rank(candidates, self.clock(), params)
        block, tokens, included, left_out = render_block(
            ranked, count_tokens or approx_tokens,
            params.token_budget if token_budget is None else token_budget)
        if touch and included:
            self.recalls.mark_recalled(r.crystal.id for r in included)
        return RecallResult(tuple(included), block, tokens, tuple(left_out),
                            time.perf_counter() - started)

    def _made_from_recent_messages(self, conversation_id: int | None,
                                   crystal_ids: Collection[int]) -> set[int]:
        """Crystals made only from this conversation's last `skip_recent_messages` messages:
        those words are still in the prompt."""
        window = self.settings.skip_recent_messages
        if conversation_id is None or window <= 0:
            return set()
        try:
            recent = {m.id for m in self.conversations.thread(conversation_id)[-window:]}
        except NotFoundError:
            return set()
        sources = self.crystals.crystals_from_messages(recent)
        return {cid for cid, mids in sources.items()
                if cid in crystal_ids and mids <= recent}

    def record_provenance(self, message_id: int,
                          recalled: RecallResult | Sequence[RecalledCrystal]) -> int:
        """Store which crystals went into the prompt of reply `message_id` (the UI shows
        them under the reply). Returns the number stored."""
        items = recalled.crystals if isinstance(recalled, RecallResult) else recalled
        return self.recalls.record_recalls(
            message_id, [(r.crystal.id, r.similarity, r.rank) for r in items])

    def recalled_for_message(self, message_id: int) -> list[StoredRecall]:
        """The crystals a reply used, in prompt order (forgotten ones are gone)."""
        return self.recalls.recalls_for_message(message_id)

"""MemoryService: the one object the companion, the CLI and the UI use for memory.

It keeps SQLite (the truth) and the hnswlib index (a cache) in step: every change is written
to SQLite first, then applied to the index, while holding one lock for changes, so two
changes never interleave. Recall runs beside changes: it only reads, and it re-reads every
candidate from SQLite, so a crystal forgotten a moment ago is never recalled.

A turn, as the companion drives it:

    recall = memory.recall_for(user_text, conversation_id, count_tokens=engine.count_tokens)
    ... put recall.prompt_block into the system prompt, generate, save the reply ...
    memory.record_provenance(reply_id, recall)
    if memory.remember_turn(conversation_id, user_text, reply_text).crystallize_due:
        memory.crystallize(conversation_id, engine)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ghostdesk.core.errors import GhostDeskError, NotFoundError, SettingsError
from ghostdesk.core.llm.types import ChatEngine
from ghostdesk.core.memory.clock import Clock, system_clock
from ghostdesk.core.memory.crystallizer import Fact, TurnText, extract_facts
from ghostdesk.core.memory.crystals import CrystalRecord, CrystalStore, StoredRecall
from ghostdesk.core.memory.documents import read_document, split_passages
from ghostdesk.core.memory.embedder import Embedder
from ghostdesk.core.memory.forgetting import ForgettingPolicy
from ghostdesk.core.memory.recall import (
    CountTokens,
    RecalledCrystal,
    RecallParams,
    RecallResult,
    approx_tokens,
    rank,
    render_block,
)
from ghostdesk.core.memory.state import DEFAULT_ALPHA, DEFAULT_BETA, StateStore, recall_query
from ghostdesk.core.memory.vector_index import CrystalIndex, IndexLoad
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import Conversation, ConversationMemory

log = logging.getLogger(__name__)

MEMORY_FOLDER = "memory"
MAX_MANUAL_CHARS = 1000


@dataclass
class MemorySettings:
    """How memory behaves; docs/memory.md explains each default."""

    alpha: float = DEFAULT_ALPHA
    """State decay per turn: S_t = normalize(α·S_{t-1} + (1-α)·e_t)."""
    beta: float = DEFAULT_BETA
    """Weight of the message in the recall query: q = normalize(β·e_msg + (1-β)·S_t)."""
    top_k: int = 5
    threshold: float = 0.30
    """Cosine similarity a crystal needs to be recalled (tuned for all-MiniLM-L6-v2)."""
    token_budget: int = 300
    """Most tokens the "Things you remember" block may take in the prompt."""
    importance_weight: float = 0.10
    recency_weight: float = 0.05
    recency_half_life_days: float = 30.0
    candidates: int = 32
    """Nearest neighbours fetched from the index and re-ranked."""
    merge_threshold: float = 0.92
    """A new crystal this similar to an existing one is merged into it."""
    crystallize_every: int = 6
    """Turns of a conversation between crystallizations."""
    crystallize_max_tokens: int = 120
    max_facts: int = 8
    archive_after_days: float = 60.0
    manual_importance: float = 0.8
    document_importance: float = 0.4
    skip_recent_messages: int = 6
    """Crystals made only from this conversation's last N messages are not recalled: those
    words are still in the prompt."""
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 64
    save_interval_s: float = 10.0
    """The index is written at most this often after changes (and always on close and after
    "forget"); a crash in between costs a rebuild at the next start, never a memory."""

    def validate(self) -> None:
        """Raise SettingsError naming the first value out of range."""
        checks = [
            (0.0 <= self.alpha < 1.0, "alpha", "0.0 up to (not including) 1.0"),
            (0.0 < self.beta <= 1.0, "beta", "above 0.0 up to 1.0"),
            (1 <= self.top_k <= 50, "top_k", "1 to 50"),
            (-1.0 <= self.threshold <= 1.0, "threshold", "-1.0 to 1.0"),
            (0 <= self.token_budget <= 100_000, "token_budget", "0 to 100000"),
            (self.candidates >= self.top_k, "candidates", "at least top_k"),
            (0.5 <= self.merge_threshold <= 1.0, "merge_threshold", "0.5 to 1.0"),
            (self.crystallize_every >= 1, "crystallize_every", "1 or more turns"),
            (self.archive_after_days > 0, "archive_after_days", "more than 0 days"),
            (4 <= self.hnsw_m <= 64, "hnsw_m", "4 to 64"),
            (self.hnsw_ef_construction >= self.hnsw_m, "hnsw_ef_construction", "at least M"),
            (1 <= self.hnsw_ef_search <= 10_000, "hnsw_ef_search", "1 to 10000"),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise SettingsError(f"Setting memory.{name} is out of range.",
                                    hint=f"Allowed: {allowed}.")

    def recall_params(self) -> RecallParams:
        return RecallParams(
            top_k=self.top_k, threshold=self.threshold,
            importance_weight=self.importance_weight, recency_weight=self.recency_weight,
            recency_half_life_days=self.recency_half_life_days,
            token_budget=self.token_budget)


@dataclass(frozen=True)
class Absorbed:
    """A text taken into memory: a new crystal, or merged into a near-duplicate."""

    crystal: CrystalRecord
    merged: bool
    similarity: float | None = None
    """With the crystal it was merged into."""


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


@dataclass(frozen=True)
class DocumentImport:
    name: str
    passages: int
    absorbed: tuple[Absorbed, ...]

    @property
    def added(self) -> int:
        return sum(not a.merged for a in self.absorbed)

    @property
    def merged(self) -> int:
        return sum(a.merged for a in self.absorbed)


@dataclass(frozen=True)
class SearchHit:
    crystal: CrystalRecord
    similarity: float
    text_match: bool


@dataclass(frozen=True)
class Consistency:
    """SQLite's active crystals against the ids the index can return."""

    sqlite_active: int
    index_live: int
    missing_from_index: tuple[int, ...] = ()
    not_in_sqlite: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing_from_index and not self.not_in_sqlite


@dataclass
class MemoryStats:
    active: int
    archived: int
    index_live: int
    index_tombstones: int
    state_turns: int
    embed_model: str
    notices: list[str] = field(default_factory=list)


class MemoryService:
    """Memory crystals, the state vector, recall, forgetting and crystallization.

    Build with `MemoryService.open(db, folder, embedder)`; `close()` saves the index.
    Safe to share across threads. Slow calls (the first embedding loads the model;
    `crystallize` runs the chat model) belong on a worker thread.
    """

    def __init__(self, db: Database, folder: Path, embedder: Embedder, *,
                 settings: MemorySettings | None = None, clock: Clock = system_clock,
                 companion_name: str = "Companion") -> None:
        self.settings = settings or MemorySettings()
        self.settings.validate()
        self.embedder = embedder
        self.companion_name = companion_name
        self.folder = Path(folder)
        self.notices: list[str] = []
        """Sentences for the user about repairs made while opening (index rebuilt...)."""
        self.last_index_load: IndexLoad | None = None
        self._db = db
        self._clock = clock
        self.crystals = CrystalStore(db, clock)
        self.state = StateStore(db, clock)
        self._conversations = ConversationStore(db)
        self.policy = ForgettingPolicy(self.settings.archive_after_days)
        self.index = CrystalIndex(
            self.folder, embedder.dim, M=self.settings.hnsw_m,
            ef_construction=self.settings.hnsw_ef_construction,
            ef_search=self.settings.hnsw_ef_search)
        self._changes = threading.RLock()
        self._open = False

    # -- life cycle ----------------------------------------------------------------------

    @classmethod
    def open(cls, db: Database, folder: Path, embedder: Embedder | None = None, *,
             settings: MemorySettings | None = None, clock: Clock = system_clock,
             companion_name: str = "Companion") -> MemoryService:
        """Open memory in `folder` (the app uses `paths.root / "memory"`). The default
        embedder is the bundled all-MiniLM-L6-v2, loaded on first use."""
        if embedder is None:
            from ghostdesk.core.memory.embedder import SentenceEmbedder

            embedder = SentenceEmbedder()
        service = cls(db, folder, embedder, settings=settings, clock=clock,
                      companion_name=companion_name)
        service.start()
        return service

    def start(self) -> IndexLoad:
        """Re-embed crystals made by another model, then load or rebuild the index."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._changes:
            reembedded = self._reembed_foreign()
            load = self.index.open(self.crystals)
            if (reembedded and not load.rebuilt) or self.index.needs_compaction():
                self.index.rebuild(self.crystals)
            if load.notice:
                self.notices.append(load.notice)
            self.last_index_load = load
            self._open = True
            return load

    def _reembed_foreign(self) -> int:
        stale = self.crystals.ids_needing_embedding(self.embedder.name, self.embedder.dim)
        if not stale:
            return 0
        started = time.perf_counter()
        for first in range(0, len(stale), 256):
            texts = self.crystals.texts(stale[first:first + 256])
            ids = list(texts)
            vectors = self.embedder.embed([texts[i] for i in ids])
            self.crystals.set_vectors(dict(zip(ids, vectors, strict=True)), self.embedder.name)
        self.notices.append(
            f"Memories were re-read with the memory model {self.embedder.name} "
            f"({len(stale)} memories, {time.perf_counter() - started:.1f} s).")
        return len(stale)

    def close(self) -> None:
        with self._changes:
            if self._open:
                self._save_index()
                self.index.close(save=False)
                self._open = False

    def __enter__(self) -> MemoryService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the turn ------------------------------------------------------------------------

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
        ranked = rank(candidates, self._clock(), params)
        block, tokens, included, left_out = render_block(
            ranked, count_tokens or approx_tokens,
            params.token_budget if token_budget is None else token_budget)
        if touch and included:
            self.crystals.mark_recalled(r.crystal.id for r in included)
        return RecallResult(tuple(included), block, tokens, tuple(left_out),
                            time.perf_counter() - started)

    def _made_from_recent_messages(self, conversation_id: int | None,
                                   crystal_ids: Collection[int]) -> set[int]:
        window = self.settings.skip_recent_messages
        if conversation_id is None or window <= 0:
            return set()
        try:
            recent = {m.id for m in self._conversations.thread(conversation_id)[-window:]}
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
        return self.crystals.record_recalls(
            message_id, [(r.crystal.id, r.similarity, r.rank) for r in items])

    def recalled_for_message(self, message_id: int) -> list[StoredRecall]:
        """The crystals a reply used, in prompt order (forgotten ones are gone)."""
        return self.crystals.recalls_for_message(message_id)

    def remember_turn(self, conversation_id: int, user_text: str, reply_text: str,
                      ) -> TurnMemory:
        """Fold a finished turn into the state vector and count it toward crystallization."""
        turn = self.embedder.embed([f"{user_text}\n{reply_text}".strip()])[0]
        with self._db.read_session() as s:
            if s.get(Conversation, conversation_id) is None:
                raise NotFoundError(f"Conversation {conversation_id} does not exist.")
        snapshot = self.state.advance(turn, self.embedder.name, self.settings.alpha)
        with self._db.session() as s:
            row = s.get(ConversationMemory, conversation_id)
            if row is None:
                row = ConversationMemory(conversation_id=conversation_id,
                                         crystallized_through_id=0, pending_turns=0)
                s.add(row)
            row.pending_turns = (row.pending_turns or 0) + 1
            row.updated_at = self._clock()
            pending = row.pending_turns
        return TurnMemory(snapshot.turn_count, pending,
                          pending >= self.settings.crystallize_every)

    # -- crystallization -----------------------------------------------------------------

    def pending_turns(self, conversation_id: int) -> int:
        with self._db.read_session() as s:
            row = s.get(ConversationMemory, conversation_id)
            return row.pending_turns if row else 0

    def crystallize(self, conversation_id: int, engine: ChatEngine, *,
                    companion_name: str | None = None) -> Crystallization:
        """Ask the model for facts in this conversation's turns since the last time, and
        take them into memory (near-duplicates merge). Runs the chat model: seconds."""
        started = time.perf_counter()
        with self._db.read_session() as s:
            row = s.get(ConversationMemory, conversation_id)
            through = row.crystallized_through_id if row else 0
        thread = self._conversations.thread(conversation_id)
        turns = [TurnText(m.id, m.role, m.content) for m in thread
                 if m.id > through and m.role in ("user", "assistant") and m.content.strip()]
        if not turns:
            return Crystallization(conversation_id, through_message_id=through)
        last_id = max(t.message_id for t in turns)
        facts: list[Fact] = []
        raw = ""
        if any(t.role == "user" for t in turns):
            facts, raw = extract_facts(
                engine, turns, companion_name=companion_name or self.companion_name,
                max_tokens=self.settings.crystallize_max_tokens,
                max_facts=self.settings.max_facts)
        absorbed: list[Absorbed] = []
        if facts:
            vectors = self.embedder.embed([f.text for f in facts])
            sources = self._best_sources(vectors, [t for t in turns if t.role == "user"])
            for fact, vector, source in zip(facts, vectors, sources, strict=True):
                absorbed.append(self._absorb(fact.text, vector, kind="fact",
                                             importance=fact.importance,
                                             source_message_ids=source))
        with self._db.session() as s:
            row = s.get(ConversationMemory, conversation_id)
            if row is None:
                row = ConversationMemory(conversation_id=conversation_id, pending_turns=0)
                s.add(row)
            row.crystallized_through_id = max(last_id, row.crystallized_through_id or 0)
            row.pending_turns = 0
            row.updated_at = self._clock()
        self._maybe_save()
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

    def on_idle(self, conversation_id: int | None, engine: ChatEngine | None,
                ) -> Crystallization | None:
        """Quiet moment: crystallize what is pending, save the index, tidy it if needed."""
        result = None
        if conversation_id is not None and engine is not None and self.pending_turns(
                conversation_id):
            result = self.crystallize(conversation_id, engine)
        with self._changes:
            if self.index.needs_compaction():
                self.index.rebuild(self.crystals)
            self._save_index()
        return result

    # -- adding --------------------------------------------------------------------------

    def add_crystal(self, text: str, *, kind: str = "fact", importance: float = 0.5,
                    source_message_ids: Sequence[int] = (), source: str | None = None,
                    ) -> Absorbed:
        """Take one text into memory (merged into a near-duplicate if there is one)."""
        text = " ".join(text.split()) if kind != "document" else text.strip()
        if not text:
            raise GhostDeskError("There is nothing to remember: the text is empty.")
        vector = self.embedder.embed([text])[0]
        absorbed = self._absorb(text, vector, kind=kind, importance=importance,
                                source_message_ids=source_message_ids, source=source)
        self._maybe_save()
        return absorbed

    def remember_message(self, message_id: int, text: str | None = None) -> list[Absorbed]:
        """"Remember this" on a message: its text (or `text`, e.g. edited by the user)
        becomes a manual crystal; a long one is split into passages."""
        message = self._conversations.get_message(message_id)
        body = (text if text is not None else message.content).strip()
        if not body:
            raise GhostDeskError("There is nothing to remember: the message is empty.")
        pieces = [body] if len(body) <= MAX_MANUAL_CHARS else split_passages(body)
        vectors = self.embedder.embed(pieces)
        result = [self._absorb(p, v, kind="manual", importance=self.settings.manual_importance,
                               source_message_ids=(message_id,))
                  for p, v in zip(pieces, vectors, strict=True)]
        self._maybe_save()
        return result

    def import_document(self, path: Path) -> DocumentImport:
        """Import a .txt or .md file as passages (DocumentError for other files)."""
        path = Path(path)
        passages = split_passages(read_document(path))
        absorbed: list[Absorbed] = []
        for first in range(0, len(passages), 64):
            batch = passages[first:first + 64]
            vectors = self.embedder.embed(batch)
            for n, (passage, vector) in enumerate(zip(batch, vectors, strict=True), first + 1):
                absorbed.append(self._absorb(
                    passage, vector, kind="document",
                    importance=self.settings.document_importance,
                    source=f"{path.name}, passage {n}"))
        self._maybe_save()
        return DocumentImport(path.name, len(passages), tuple(absorbed))

    def _absorb(self, text: str, vector: np.ndarray, *, kind: str, importance: float,
                source_message_ids: Sequence[int] = (), source: str | None = None,
                ) -> Absorbed:
        """Add a crystal, or merge it into the most similar active one if that is at least
        `merge_threshold` alike: the more important (or, equally important, the longer)
        text wins, importance rises by 0.1, sources are united."""
        vector = np.asarray(vector, dtype=np.float32).ravel()
        with self._changes:
            ids, _ = self.index.query(vector, 4)
            near = self.crystals.get_many(ids.tolist(), active_only=True)
            best: tuple[float, CrystalRecord] | None = None
            for cid in ids.tolist():
                if cid in near:
                    similarity = float(np.dot(near[cid][1], vector))
                    if best is None or similarity > best[0]:
                        best = (similarity, near[cid][0])
            if best is not None and best[0] >= self.settings.merge_threshold:
                similarity, existing = best
                replace = importance > existing.importance or (
                    importance == existing.importance and len(text) > len(existing.text))
                merged = self.crystals.merge(
                    existing.id,
                    text=text if replace else None,
                    vector=vector if replace else None,
                    importance=min(1.0, max(importance, existing.importance) + 0.1),
                    source_message_ids=source_message_ids)
                if replace:
                    self.index.add([existing.id], vector[None, :])
                return Absorbed(merged, True, similarity)
            record = self.crystals.add(
                text, vector, kind=kind, embed_model=self.embedder.name,
                importance=importance, source_message_ids=source_message_ids, source=source)
            self.index.add([record.id], vector[None, :])
            return Absorbed(record, False)

    # -- the user's controls -------------------------------------------------------------

    def get(self, crystal_id: int) -> CrystalRecord:
        return self.crystals.get(crystal_id)

    def list_crystals(self, *, archived: bool | None = False, kind: str | None = None,
                      limit: int = 100, offset: int = 0) -> list[CrystalRecord]:
        return self.crystals.list(archived=archived, kind=kind, limit=limit, offset=offset)

    def pin(self, crystal_id: int, pinned: bool = True) -> CrystalRecord:
        """Pinned crystals never fade to the archive; pinning an archived one restores it."""
        with self._changes:
            record = self.crystals.set_pinned(crystal_id, pinned)
            if pinned and record.archived:
                record = self._restore_locked(crystal_id)
        self._maybe_save()
        return record

    def edit(self, crystal_id: int, text: str) -> CrystalRecord:
        text = " ".join(text.split())
        if not text:
            raise GhostDeskError("A memory can't be empty; use Forget to remove it.")
        vector = self.embedder.embed([text])[0]
        with self._changes:
            record = self.crystals.edit(crystal_id, text, vector, self.embedder.name)
            if not record.archived:
                self.index.add([crystal_id], vector[None, :])
        self._maybe_save()
        return record

    def set_importance(self, crystal_id: int, importance: float) -> CrystalRecord:
        return self.crystals.set_importance(crystal_id, importance)

    def forget(self, crystal_id: int) -> bool:
        """Delete a crystal for good: its row, vector, sources and every recall of it, and
        its entry in the index (overwritten, then saved). False if it did not exist."""
        with self._changes:
            existed = self.crystals.delete(crystal_id)
            self.index.remove([crystal_id], scrub=True)
            self._save_index()
        return existed

    def archive(self, crystal_id: int) -> CrystalRecord:
        """Move to the archive now. A pinned crystal must be unpinned first (GhostDeskError)."""
        with self._changes:
            record = self.crystals.get(crystal_id)
            if record.pinned:
                raise GhostDeskError("A pinned memory can't be archived; unpin it first.")
            self.crystals.archive([crystal_id])
            self.index.remove([crystal_id])
        self._maybe_save()
        return self.crystals.get(crystal_id)

    def restore(self, crystal_id: int) -> CrystalRecord:
        """Back from the archive into recall."""
        with self._changes:
            record = self._restore_locked(crystal_id)
        self._maybe_save()
        return record

    def _restore_locked(self, crystal_id: int) -> CrystalRecord:
        record = self.crystals.restore(crystal_id)
        _, vector = self.crystals.get_many([crystal_id])[crystal_id]
        self.index.add([crystal_id], vector[None, :])
        return record

    def run_forgetting(self) -> list[int]:
        """Archive every crystal that has not resonated for `archive_after_days`."""
        cutoff = self.policy.cutoff(self._clock())
        with self._changes:
            moved = self.crystals.archive(self.crystals.stale_ids(cutoff),
                                          only_stale_before=cutoff)
            if moved:
                self.index.remove(moved)
        if moved:
            self._maybe_save()
        return moved

    def search(self, query: str, *, archived: bool | None = None, limit: int = 20,
               min_similarity: float | None = None) -> list[SearchHit]:
        """Find crystals by words and by meaning, active and archived (`archived=False` for
        active only, True for the archive only). Text matches
        come first, then the most similar."""
        query = query.strip()
        if not query:
            return []
        floor = self.settings.threshold if min_similarity is None else min_similarity
        vector = self.embedder.embed([query])[0]
        scores: dict[int, float] = {}
        for ids, vectors in self.crystals.iter_vectors(archived=archived, batch=20_000):
            sims = vectors @ vector
            keep = np.argsort(-sims)[:limit]
            for i in keep:
                if sims[i] >= floor:
                    scores[int(ids[i])] = float(sims[i])
        text_hits = {c.id for c in self.crystals.search_text(query, archived=archived,
                                                             limit=limit)}
        best = sorted(scores, key=lambda i: -scores[i])[:limit]
        ids = list(dict.fromkeys([*sorted(text_hits), *best]))
        rows = self.crystals.get_many(ids)
        hits = [SearchHit(rows[i][0], float(np.dot(rows[i][1], vector)), i in text_hits)
                for i in ids if i in rows]
        hits.sort(key=lambda h: (not h.text_match, -h.similarity))
        return hits[:limit]

    # -- checks --------------------------------------------------------------------------

    def rebuild_index(self) -> int:
        """Rebuild the hnswlib index from SQLite (the truth); returns the crystals indexed."""
        with self._changes:
            return self.index.rebuild(self.crystals)

    def check_consistency(self) -> Consistency:
        """Compare SQLite's active crystals with the index (holds the change lock)."""
        with self._changes:
            active = set(self.crystals.active_ids().tolist())
            live = set(self.index.live_ids().tolist())
        return Consistency(len(active), len(live), tuple(sorted(active - live)),
                           tuple(sorted(live - active)))

    def stats(self) -> MemoryStats:
        state = self.state.load(self.embedder.name, self.embedder.dim)
        return MemoryStats(
            active=self.crystals.count(archived=False),
            archived=self.crystals.count(archived=True),
            index_live=self.index.count, index_tombstones=self.index.tombstones,
            state_turns=state.turn_count if state else 0, embed_model=self.embedder.name,
            notices=list(self.notices))

    def _maybe_save(self) -> None:
        if not self.index.dirty:
            return
        if time.monotonic() - self.index.last_saved >= self.settings.save_interval_s:
            with self._changes:
                self._save_index()

    def _save_index(self) -> None:
        """Write the index if it changed. The index is a cache: a failure to write it (disk
        full, read-only folder) never fails the user's action; it is told once, and the next
        start rebuilds the index from SQLite."""
        try:
            self.index.save()
        except OSError as err:
            log.warning("could not save the memory index in %s: %s", self.folder, err)
            notice = (f"GhostDesk could not save its memory index in {self.folder} "
                      f"({err.strerror or err}). Memories are safe in the database; the index "
                      "will be rebuilt at the next start.")
            if notice not in self.notices:
                self.notices.append(notice)


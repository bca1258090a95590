"""MemoryService: the one object the companion, the CLI and the UI use for memory.

It composes the parts, each in its own module, and adds nothing but their life cycle:

    index_keeper.py     IndexKeeper: the index opened, saved, checked; the lock for changes
    recaller.py         Recaller: recall for a message, provenance of replies
    crystallization.py  ConversationCrystallizer: turns counted, then crystallized into facts
    intake.py           CrystalIntake: a text, a message or a document taken into memory
    crystal_controls.py CrystalControls: pin, edit, archive, restore, forget, forgetting
    search.py           search_crystals: by words and by meaning, the archive included

SQLite is the truth and the hnswlib index a cache: every change is written to SQLite first,
then applied to the index, holding one lock, so two changes never interleave. Recall runs
beside changes: it only reads, and it re-reads every candidate from SQLite, so a crystal
forgotten a moment ago is never recalled.

A turn, as the companion drives it:

    recall = memory.recall_for(user_text, conversation_id, count_tokens=engine.count_tokens)
    ... put recall.prompt_block into the system prompt, generate, save the reply ...
    memory.record_provenance(reply_id, recall)
    if memory.remember_turn(conversation_id, user_text, reply_text).crystallize_due:
        memory.crystallize(conversation_id, engine)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ghostdesk.core.llm.types import ChatEngine
from ghostdesk.core.memory.clock import Clock, system_clock
from ghostdesk.core.memory.crystal_controls import CrystalControls
from ghostdesk.core.memory.crystal_record import CrystalRecord, StoredRecall
from ghostdesk.core.memory.crystal_vectors import CrystalVectors
from ghostdesk.core.memory.crystallization import (
    ConversationCrystallizer,
    Crystallization,
    TurnMemory,
)
from ghostdesk.core.memory.crystals import CrystalStore
from ghostdesk.core.memory.embedder import Embedder
from ghostdesk.core.memory.forgetting import ForgettingPolicy
from ghostdesk.core.memory.index_keeper import Consistency, IndexKeeper
from ghostdesk.core.memory.intake import Absorbed, CrystalIntake, DocumentImport
from ghostdesk.core.memory.recall import CountTokens, RecalledCrystal, RecallResult
from ghostdesk.core.memory.recall_log import RecallLog
from ghostdesk.core.memory.recaller import Recaller
from ghostdesk.core.memory.search import SearchHit, search_crystals
from ghostdesk.core.memory.settings import MemorySettings
from ghostdesk.core.memory.state import StateStore
from ghostdesk.core.memory.vector_index import CrystalIndex, IndexLoad
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import Database

MEMORY_FOLDER = "memory"


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
        conversations = ConversationStore(db)
        self.crystals = CrystalStore(db, clock)
        self.recalls = RecallLog(db, clock)
        self.vectors = CrystalVectors(db)
        self.state = StateStore(db, clock)
        self.policy = ForgettingPolicy(self.settings.archive_after_days)
        self.keeper = IndexKeeper(folder, embedder, self.vectors, self.settings)
        self.intake = CrystalIntake(
            keeper=self.keeper, crystals=self.crystals, embedder=embedder,
            conversations=conversations, settings=self.settings)
        self.recaller = Recaller(
            index=self.keeper.index, crystals=self.crystals, recalls=self.recalls,
            state=self.state, embedder=embedder, conversations=conversations,
            settings=self.settings, clock=clock)
        self.crystallizer = ConversationCrystallizer(
            db=db, conversations=conversations, state=self.state, intake=self.intake,
            keeper=self.keeper, embedder=embedder, settings=self.settings, clock=clock)
        self.controls = CrystalControls(
            keeper=self.keeper, crystals=self.crystals, embedder=embedder, policy=self.policy,
            clock=clock)

    @property
    def folder(self) -> Path:
        return self.keeper.folder

    @property
    def index(self) -> CrystalIndex:
        return self.keeper.index

    @property
    def notices(self) -> list[str]:
        """Sentences for the user about repairs made while opening (index rebuilt...)."""
        return self.keeper.notices

    @property
    def last_index_load(self) -> IndexLoad | None:
        return self.keeper.last_index_load

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
        return self.keeper.start()

    def close(self) -> None:
        self.keeper.close()

    def __enter__(self) -> MemoryService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the turn (recaller.py, crystallization.py) --------------------------------------

    def recall_for(self, message_text: str, conversation_id: int | None = None, *,
                   count_tokens: CountTokens | None = None, token_budget: int | None = None,
                   touch: bool = True) -> RecallResult:
        """The crystals that resonate with this message and the state vector, and the
        prompt block that holds them (`touch=False` for a preview)."""
        return self.recaller.recall_for(message_text, conversation_id,
                                        count_tokens=count_tokens, token_budget=token_budget,
                                        touch=touch)

    def record_provenance(self, message_id: int,
                          recalled: RecallResult | Sequence[RecalledCrystal]) -> int:
        """Store which crystals went into the prompt of reply `message_id`."""
        return self.recaller.record_provenance(message_id, recalled)

    def recalled_for_message(self, message_id: int) -> list[StoredRecall]:
        """The crystals a reply used, in prompt order (forgotten ones are gone)."""
        return self.recaller.recalled_for_message(message_id)

    def remember_turn(self, conversation_id: int, user_text: str, reply_text: str,
                      ) -> TurnMemory:
        """Fold a finished turn into the state vector and count it toward crystallization."""
        return self.crystallizer.remember_turn(conversation_id, user_text, reply_text)

    def pending_turns(self, conversation_id: int) -> int:
        return self.crystallizer.pending_turns(conversation_id)

    def crystallize(self, conversation_id: int, engine: ChatEngine, *,
                    companion_name: str | None = None) -> Crystallization:
        """Ask the model for facts in this conversation's turns since the last time, and
        take them into memory (near-duplicates merge). Runs the chat model: seconds."""
        return self.crystallizer.crystallize(
            conversation_id, engine, companion_name=companion_name or self.companion_name)

    def on_idle(self, conversation_id: int | None, engine: ChatEngine | None,
                ) -> Crystallization | None:
        """Quiet moment: crystallize what is pending, save the index, tidy it if needed."""
        result = None
        if conversation_id is not None and engine is not None and self.pending_turns(
                conversation_id):
            result = self.crystallize(conversation_id, engine)
        self.keeper.tidy()
        return result

    # -- adding (intake.py) --------------------------------------------------------------

    def add_crystal(self, text: str, *, kind: str = "fact", importance: float = 0.5,
                    source_message_ids: Sequence[int] = (), source: str | None = None,
                    ) -> Absorbed:
        """Take one text into memory (merged into a near-duplicate if there is one)."""
        return self.intake.add_crystal(text, kind=kind, importance=importance,
                                       source_message_ids=source_message_ids, source=source)

    def remember_message(self, message_id: int, text: str | None = None) -> list[Absorbed]:
        """"Remember this" on a message (or `text`, e.g. edited by the user)."""
        return self.intake.remember_message(message_id, text)

    def import_document(self, path: Path) -> DocumentImport:
        """Import a .txt or .md file as passages (DocumentError for other files)."""
        return self.intake.import_document(path)

    # -- the user's controls (crystal_controls.py, search.py) ----------------------------

    def get(self, crystal_id: int) -> CrystalRecord:
        return self.crystals.get(crystal_id)

    def list_crystals(self, *, archived: bool | None = False, kind: str | None = None,
                      limit: int = 100, offset: int = 0) -> list[CrystalRecord]:
        return self.crystals.list(archived=archived, kind=kind, limit=limit, offset=offset)

    def pin(self, crystal_id: int, pinned: bool = True) -> CrystalRecord:
        """Pinned crystals never fade to the archive; pinning an archived one restores it."""
        return self.controls.pin(crystal_id, pinned)

    def edit(self, crystal_id: int, text: str) -> CrystalRecord:
        return self.controls.edit(crystal_id, text)

    def set_importance(self, crystal_id: int, importance: float) -> CrystalRecord:
        return self.controls.set_importance(crystal_id, importance)

    def forget(self, crystal_id: int) -> bool:
        """Delete a crystal for good (SQLite and index). False if it did not exist."""
        return self.controls.forget(crystal_id)

    def archive(self, crystal_id: int) -> CrystalRecord:
        """Move to the archive now. A pinned crystal must be unpinned first (GhostDeskError)."""
        return self.controls.archive(crystal_id)

    def restore(self, crystal_id: int) -> CrystalRecord:
        """Back from the archive into recall."""
        return self.controls.restore(crystal_id)

    def run_forgetting(self) -> list[int]:
        """Archive every crystal that has not resonated for `archive_after_days`."""
        return self.controls.run_forgetting()

    def search(self, query: str, *, archived: bool | None = None, limit: int = 20,
               min_similarity: float | None = None) -> list[SearchHit]:
        """Find crystals by words and by meaning, active and archived (`archived=False` for
        active only, True for the archive only). Text matches come first, then the most
        similar (at least `threshold` alike unless `min_similarity` is given)."""
        floor = self.settings.threshold if min_similarity is None else min_similarity
        return search_crystals(self.crystals, self.vectors, self.embedder, query,
                               archived=archived, limit=limit, min_similarity=floor)

    # -- checks (index_keeper.py) --------------------------------------------------------

    def rebuild_index(self) -> int:
        """Rebuild the hnswlib index from SQLite (the truth); returns the crystals indexed."""
        return self.keeper.rebuild()

    def check_consistency(self) -> Consistency:
        """Compare SQLite's active crystals with the index (holds the change lock)."""
        return self.keeper.check_consistency()

    def stats(self) -> MemoryStats:
        state = self.state.load(self.embedder.name, self.embedder.dim)
        return MemoryStats(
            active=self.crystals.count(archived=False),
            archived=self.crystals.count(archived=True),
            index_live=self.index.count, index_tombstones=self.index.tombstones,
            state_turns=state.turn_count if state else 0, embed_model=self.embedder.name,
            notices=list(self.notices))

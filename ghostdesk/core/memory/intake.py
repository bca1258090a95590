"""Taking texts into memory: one text, a message ("Remember this"), or a whole document.

Every text becomes a crystal, or is merged into the most similar active crystal when that is
at least `merge_threshold` alike (`CrystalIntake.absorb`), so saying a thing twice does not
make two memories of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.memory.crystal_record import CrystalRecord
from ghostdesk.core.memory.crystals import CrystalStore
from ghostdesk.core.memory.documents import read_document, split_passages
from ghostdesk.core.memory.embedder import Embedder
from ghostdesk.core.memory.index_keeper import IndexKeeper
from ghostdesk.core.memory.settings import MemorySettings
from ghostdesk.core.store.conversations import ConversationStore

MAX_MANUAL_CHARS = 1000
"""A remembered message longer than this is split into passages."""


@dataclass(frozen=True)
class Absorbed:
    """A text taken into memory: a new crystal, or merged into a near-duplicate."""

    crystal: CrystalRecord
    merged: bool
    similarity: float | None = None
    """With the crystal it was merged into."""


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


@dataclass(frozen=True, eq=False)
class CrystalIntake:
    """Adds crystals to SQLite and the index, merging near-duplicates."""

    keeper: IndexKeeper
    crystals: CrystalStore
    embedder: Embedder
    conversations: ConversationStore
    settings: MemorySettings

    def add_crystal(self, text: str, *, kind: str = "fact", importance: float = 0.5,
                    source_message_ids: Sequence[int] = (), source: str | None = None,
                    ) -> Absorbed:
        """Take one text into memory (merged into a near-duplicate if there is one)."""
        text = " ".join(text.split()) if kind != "document" else text.strip()
        if not text:
            raise GhostDeskError("There is nothing to remember: the text is empty.")
        vector = self.embedder.embed([text])[0]
        absorbed = self.absorb(text, vector, kind=kind, importance=importance,
                               source_message_ids=source_message_ids, source=source)
        self.keeper.save_soon()
        return absorbed

    def remember_message(self, message_id: int, text: str | None = None) -> list[Absorbed]:
        """"Remember this" on a message: its text (or `text`, e.g. edited by the user)
        becomes a manual crystal; a long one is split into passages."""
        message = self.conversations.get_message(message_id)
        body = (text if text is not None else message.content).strip()
        if not body:
            raise GhostDeskError("There is nothing to remember: the message is empty.")
        pieces = [body] if len(body) <= MAX_MANUAL_CHARS else split_passages(body)
        vectors = self.embedder.embed(pieces)
        result = [self.absorb(p, v, kind="manual", importance=self.settings.manual_importance,
                              source_message_ids=(message_id,))
                  for p, v in zip(pieces, vectors, strict=True)]
        self.keeper.save_soon()
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
                absorbed.append(self.absorb(
                    passage, vector, kind="document",
                    importance=self.settings.document_importance,
                    source=f"{path.name}, passage {n}"))
        self.keeper.save_soon()
        return DocumentImport(path.name, len(passages), tuple(absorbed))

    def absorb(self, text: str, vector: np.ndarray, *, kind: str, importance: float,
               source_message_ids: Sequence[int] = (), source: str | None = None,
               ) -> Absorbed:
        """Add a crystal, or merge it into the most similar active one if that is at least
        `merge_threshold` alike: the more important (or, equally important, the longer)
        text wins, importance rises by 0.1, sources are united. The caller saves the index."""
        vector = np.asarray(vector, dtype=np.float32).ravel()
        index = self.keeper.index
        with self.keeper.changes:
            ids, _ = index.query(vector, 4)
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
                    index.add([existing.id], vector[None, :])
                return Absorbed(merged, True, similarity)
            record = self.crystals.add(
                text, vector, kind=kind, embed_model=self.embedder.name,
                importance=importance, source_message_ids=source_message_ids, source=source)
            index.add([record.id], vector[None, :])
            return Absorbed(record, False)

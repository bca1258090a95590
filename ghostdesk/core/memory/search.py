"""Searching memories by words and by meaning, the archive included (the Memory pane, the CLI).

Unlike recall, search reads every vector from SQLite (brute force, in batches) rather than
asking the index: the index holds only active crystals, and search must find archived ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ghostdesk.core.memory.crystal_record import CrystalRecord
from ghostdesk.core.memory.crystal_vectors import CrystalVectors
from ghostdesk.core.memory.crystals import CrystalStore
from ghostdesk.core.memory.embedder import Embedder


@dataclass(frozen=True)
class SearchHit:
    crystal: CrystalRecord
    similarity: float
    text_match: bool


def search_crystals(crystals: CrystalStore, vectors: CrystalVectors, embedder: Embedder,
                    query: str, *, archived: bool | None, limit: int, min_similarity: float,
                    ) -> list[SearchHit]:
    """Crystals containing every word of `query`, then those at least `min_similarity` alike
    in meaning, at most `limit` (`archived`: None both, False active only, True archive only)."""
    query = query.strip()
    if not query:
        return []
    vector = embedder.embed([query])[0]
    scores: dict[int, float] = {}
    for ids, batch in vectors.iter_vectors(archived=archived, batch=20_000):
        sims = batch @ vector
        keep = np.argsort(-sims)[:limit]
        for i in keep:
            if sims[i] >= min_similarity:
                scores[int(ids[i])] = float(sims[i])
    text_hits = {c.id for c in crystals.search_text(query, archived=archived, limit=limit)}
    best = sorted(scores, key=lambda i: -scores[i])[:limit]
    ids = list(dict.fromkeys([*sorted(text_hits), *best]))
    rows = crystals.get_many(ids)
    hits = [SearchHit(rows[i][0], float(np.dot(rows[i][1], vector)), i in text_hits)
            for i in ids if i in rows]
    hits.sort(key=lambda h: (not h.text_match, -h.similarity))
    return hits[:limit]

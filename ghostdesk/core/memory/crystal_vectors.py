"""The crystals' vectors in bulk: what the hot index is built from, and re-embedding them.

Reads stream in id order, one short read transaction per batch, so a rebuild over a million
crystals never holds a long transaction or all vectors at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from sqlalchemy import func, or_, select, update

from ghostdesk.core.memory.embedder import vector_to_bytes
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import Crystal


class CrystalVectors:
    """Bulk access to the vectors in one Database; the `IndexSource` of the hot index."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def active_ids(self) -> np.ndarray:
        """Ids of crystals that belong in the hot index (a covering-index scan)."""
        with self._db.read_session() as s:
            ids = s.scalars(select(Crystal.id).where(Crystal.archived.is_(False))).all()
        return np.fromiter(ids, dtype=np.int64, count=len(ids))

    def iter_active_vectors(self, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self.iter_vectors(archived=False, batch=batch)

    def iter_vectors(self, *, archived: bool | None, batch: int = 10_000,
                     ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) in id order, one short read transaction per batch."""
        last = 0
        while True:
            query = select(Crystal.id, Crystal.dim, Crystal.vector).where(Crystal.id > last)
            if archived is not None:
                query = query.where(Crystal.archived.is_(archived))
            query = query.order_by(Crystal.id).limit(batch)
            with self._db.read_session() as s:
                rows = s.execute(query).all()
            if not rows:
                return
            dim = rows[0][1]
            if any(r[1] != dim for r in rows):
                raise ValueError("crystals with vectors of different sizes; re-embed first")
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(
                len(rows), dim).astype(np.float32)
            yield ids, vectors
            last = int(ids[-1])

    def embed_models(self) -> dict[tuple[str, int], int]:
        """(embed_model, dim) -> number of crystals with vectors from it."""
        query = select(Crystal.embed_model, Crystal.dim, func.count()).group_by(
            Crystal.embed_model, Crystal.dim)
        with self._db.read_session() as s:
            return {(m, d): n for m, d, n in s.execute(query)}

    def ids_needing_embedding(self, embed_model: str, dim: int) -> list[int]:
        """Crystals whose vectors another model made (or of another size)."""
        query = select(Crystal.id).where(or_(Crystal.embed_model != embed_model,
                                             Crystal.dim != dim))
        with self._db.read_session() as s:
            return list(s.scalars(query))

    def texts(self, ids: Iterable[int]) -> dict[int, str]:
        ids = list(ids)
        with self._db.read_session() as s:
            rows = s.execute(select(Crystal.id, Crystal.text).where(Crystal.id.in_(ids)))
            return {cid: text for cid, text in rows}

    def set_vectors(self, vectors: dict[int, np.ndarray], embed_model: str) -> None:
        """Replace these crystals' vectors with ones `embed_model` made."""
        with self._db.session() as s:
            for cid, vector in vectors.items():
                vector = np.asarray(vector, dtype=np.float32).ravel()
                s.execute(update(Crystal).where(Crystal.id == cid).values(
                    vector=vector_to_bytes(vector), dim=int(vector.shape[0]),
                    embed_model=embed_model))

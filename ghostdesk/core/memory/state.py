"""The companion's state vector S_t: a slowly moving summary of the whole relationship.

Every turn, S_t = normalize(α·S_{t-1} + (1-α)·e_t), where e_t embeds the user's message and
the reply together. A turn's weight decays by α per later turn, so with α = 0.85 the last ~6
turns carry most of it (1/(1-α) ≈ 6.7) while a topic the two keep returning to stays in it.
Recall asks with q = normalize(β·e_message + (1-β)·S_t): with β = 0.7 the current message
leads and the state tips close calls toward what the conversation has been about.
The vector lives in SQLite (`companion_state`, one row), so it survives restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from ghostdesk.core.memory.clock import Clock, system_clock
from ghostdesk.core.memory.embedder import normalize_rows, vector_from_bytes, vector_to_bytes
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import CompanionState

DEFAULT_ALPHA = 0.85
DEFAULT_BETA = 0.7
_STATE_ROW = 1


def _unit(vector: np.ndarray) -> np.ndarray:
    return normalize_rows(np.asarray(vector, dtype=np.float32).ravel())[0]


def blend(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    """normalize(weight·first + (1-weight)·second); `first` alone if they cancel out."""
    mixed = weight * np.asarray(first, np.float32) + (1.0 - weight) * np.asarray(second,
                                                                                 np.float32)
    if float(np.linalg.norm(mixed)) < 1e-6:
        return _unit(first)
    return _unit(mixed)


def next_state(previous: np.ndarray | None, turn: np.ndarray, alpha: float = DEFAULT_ALPHA,
               ) -> np.ndarray:
    """S_t from S_{t-1} (None before the first turn) and the turn's embedding e_t."""
    if previous is None:
        return _unit(turn)
    return blend(previous, turn, alpha)


def recall_query(message: np.ndarray, state: np.ndarray | None, beta: float = DEFAULT_BETA,
                 ) -> np.ndarray:
    """The vector recall searches with: the message, leaning toward the state."""
    if state is None:
        return _unit(message)
    return blend(message, state, beta)


@dataclass(frozen=True)
class StateSnapshot:
    vector: np.ndarray
    turn_count: int
    updated_at: datetime
    embed_model: str


class StateStore:
    """Loads and advances the one saved state vector."""

    def __init__(self, db: Database, clock: Clock = system_clock) -> None:
        self._db = db
        self._clock = clock

    def load(self, embed_model: str, dim: int) -> StateSnapshot | None:
        """The saved state, or None if there is none yet or it came from another model
        (a vector from another model means nothing to this one)."""
        with self._db.read_session() as s:
            row = s.get(CompanionState, _STATE_ROW)
            if row is None or row.embed_model != embed_model or row.dim != dim:
                return None
            return StateSnapshot(vector_from_bytes(row.vector, dim), row.turn_count,
                                 row.updated_at, row.embed_model)

    def advance(self, turn: np.ndarray, embed_model: str, alpha: float = DEFAULT_ALPHA,
                ) -> StateSnapshot:
        """Fold one turn into the state and save it, in one transaction."""
        turn = np.asarray(turn, dtype=np.float32).ravel()
        dim = int(turn.shape[0])
        now = self._clock()
        with self._db.session() as s:
            row = s.get(CompanionState, _STATE_ROW)
            previous = None
            if row is not None and row.embed_model == embed_model and row.dim == dim:
                previous = vector_from_bytes(row.vector, dim)
            vector = next_state(previous, turn, alpha)
            if row is None:
                row = CompanionState(id=_STATE_ROW, turn_count=0)
                s.add(row)
            row.embed_model = embed_model
            row.dim = dim
            row.vector = vector_to_bytes(vector)
            row.turn_count = (row.turn_count or 0) + 1 if previous is not None else 1
            row.updated_at = now
            return StateSnapshot(vector, row.turn_count, now, embed_model)

    def reset(self) -> None:
        with self._db.session() as s:
            row = s.get(CompanionState, _STATE_ROW)
            if row is not None:
                s.delete(row)

"""The companion's state vector: the update rule, the recall query, and persistence."""

from __future__ import annotations

import numpy as np
import pytest

from ghostdesk.core.memory.embedder import normalize_rows
from ghostdesk.core.memory.state import StateStore, next_state, recall_query


def unit(*values: float) -> np.ndarray:
    return normalize_rows(np.array(values, dtype=np.float32))[0]


def test_first_turn_is_the_state():
    e = unit(3, 4)
    assert np.allclose(next_state(None, e), e)


def test_update_is_the_normalized_decayed_blend():
    s, e = unit(1, 0), unit(0, 1)
    got = next_state(s, e, alpha=0.85)
    assert np.allclose(got, unit(0.85, 0.15))
    assert float(np.linalg.norm(got)) == pytest.approx(1.0)


def test_old_turns_fade_after_a_handful_of_turns():
    state = unit(1, 0)
    for _ in range(6):
        state = next_state(state, unit(0, 1), alpha=0.85)
    # 0.85^6 = 0.38 of the first topic is left against 0.62 of the new one.
    assert state[1] > state[0] > 0


def test_opposite_vectors_do_not_make_a_zero_state():
    assert np.allclose(next_state(unit(1, 0), unit(-1, 0), alpha=0.5), unit(1, 0))


def test_query_leans_on_the_message():
    message, state = unit(1, 0), unit(0, 1)
    q = recall_query(message, state, beta=0.7)
    assert np.allclose(q, unit(0.7, 0.3))
    assert np.allclose(recall_query(message, None), message)


def test_state_is_saved_and_follows_the_model(db, clock):
    states = StateStore(db, clock)
    assert states.load("model-a", 2) is None
    states.advance(unit(1, 0), "model-a")
    second = states.advance(unit(0, 1), "model-a", alpha=0.5)
    assert second.turn_count == 2
    loaded = StateStore(db, clock).load("model-a", 2)
    assert loaded is not None and np.allclose(loaded.vector, unit(1, 1))
    assert loaded.updated_at == clock()
    # A state made by another embedding model means nothing to this one.
    assert states.load("model-b", 2) is None
    restarted = states.advance(unit(0, 1), "model-b")
    assert restarted.turn_count == 1 and np.allclose(restarted.vector, unit(0, 1))


def test_remember_turn_moves_the_state(memory, store):
    cid = store.create_conversation().id
    first = memory.remember_turn(cid, "hello", "hi there")
    second = memory.remember_turn(cid, "tell me about cellos", "they are big violins")
    assert (first.state_turns, second.state_turns) == (1, 2)
    assert (first.pending_turns, second.pending_turns) == (1, 2)
    assert not second.crystallize_due
    assert memory.stats().state_turns == 2


def test_remember_turn_of_a_missing_conversation(memory):
    from ghostdesk.core.errors import NotFoundError

    with pytest.raises(NotFoundError):
        memory.remember_turn(999, "hi", "hello")


@pytest.mark.parametrize("field,value", [("alpha", 1.0), ("beta", 0.0), ("top_k", 0),
                                         ("candidates", 2), ("hnsw_m", 2)])
def test_settings_out_of_range_are_refused(field, value):
    from ghostdesk.core.errors import SettingsError
    from ghostdesk.core.memory.settings import MemorySettings

    settings = MemorySettings(**{field: value})
    with pytest.raises(SettingsError, match=f"memory.{field}"):
        settings.validate()
    MemorySettings().validate()

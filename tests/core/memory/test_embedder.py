"""Embedders: the bundled MiniLM (offline, 384-d, normalized) and the hashing stand-in."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from ghostdesk.core.memory.embedder import (
    SentenceEmbedder,
    bundled_embedder_path,
    vector_from_bytes,
    vector_to_bytes,
)
from tests.fakes import HashingEmbedder


def test_hashing_is_deterministic_normalized_and_word_based():
    e = HashingEmbedder(dim=128)
    a, b, c, empty = e.embed(["The cat sat", "the CAT sat!", "quantum field theory", ""])
    assert a.dtype == np.float32 and a.shape == (128,)
    assert np.allclose(a, b)
    assert float(np.linalg.norm(empty)) == pytest.approx(1.0)
    assert float(a @ c) < 0.3
    assert np.array_equal(HashingEmbedder(128).embed(["The cat sat"])[0], a)


def test_vector_bytes_round_trip():
    v = np.arange(5, dtype=np.float32) / 7
    assert np.array_equal(vector_from_bytes(vector_to_bytes(v), 5), v)
    with pytest.raises(ValueError):
        vector_from_bytes(vector_to_bytes(v), 6)


def test_bundled_model_is_found_in_its_package():
    path = bundled_embedder_path()
    assert (path / "model.safetensors").is_file()


def test_minilm_embeds_meaning(minilm: SentenceEmbedder):
    assert minilm.dim == 384 and minilm.name == "all-MiniLM-L6-v2"
    vectors = minilm.embed(["My sister lives in Chengdu.", "Where does my sister live?",
                            "The stock market fell today."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    # Batched and single embeddings agree.
    assert np.allclose(minilm.embed(["Where does my sister live?"])[0], vectors[1], atol=1e-5)
    assert minilm.embed([]).shape == (0, 384)


def test_importing_memory_loads_neither_torch_nor_hnswlib():
    code = ("import sys, ghostdesk.core.memory, ghostdesk.core.memory.service;"
            "bad = [m for m in ('torch', 'hnswlib', 'sentence_transformers') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ})
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_model_folder_is_a_clear_error(tmp_path):
    from ghostdesk.core.memory.embedder import EmbedderError

    with pytest.raises(EmbedderError, match="does not exist"):
        SentenceEmbedder(tmp_path / "nope", dim=384).embed(["hi"])


def test_a_new_embedding_model_re_embeds_every_crystal(make_memory, store):
    first = make_memory(HashingEmbedder(dim=64))
    cid = store.create_conversation().id
    crystal = first.add_crystal("grey cat called pixel").crystal
    first.remember_turn(cid, "hi", "hello")
    first.close()
    second = make_memory(HashingEmbedder(dim=96))
    assert any("re-read" in n for n in second.notices)
    assert second.recall_for("grey cat called pixel").crystal_ids == [crystal.id]
    assert second.vectors.embed_models() == {("hashing-96", 96): 1}
    assert second.check_consistency().ok
    assert second.stats().state_turns == 0  # the old state vector does not carry over

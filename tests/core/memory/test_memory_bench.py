"""The memory benchmark runs end to end at a small size (the real runs are 100k and 1M)."""

from __future__ import annotations

from pathlib import Path

from ghostdesk.bench.memory import clustered_vectors, exact_top_k, run_memory_bench
from tests.fakes import HashingEmbedder


def test_exact_top_k_is_exact():
    data = clustered_vectors(500, 8, 5, seed=1)
    top = exact_top_k(data, data[:3], 4)
    assert top[:, 0].tolist() == [0, 1, 2]  # each point is its own nearest neighbour
    sims = data[:3] @ data.T
    for row in range(3):
        assert set(top[row]) == set(sims[row].argsort()[::-1][:4])


def test_bench_smoke_at_2k(tmp_path: Path):
    report = run_memory_bench(2000, queries=40, insert_sample=50, e2e_queries=10,
                              ef_sweep=(16, 64), embedder=HashingEmbedder(384),
                              folder=tmp_path / "bench")
    data = report.data
    assert data["n"] == 2000
    assert data["recall_at_k"] >= 0.9
    assert data["load_clean"] == 1.0  # the saved index was loaded, not rebuilt
    assert data["e2e_p99_ms"] > 0 and data["rebuild_s"] > 0
    markdown = report.to_markdown()
    assert "recall@10" in markdown and "end to end" in markdown
    assert report.verdicts and "0.98" in report.verdicts[0]

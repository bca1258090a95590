"""`ghostdesk bench memory`: the memory index at scale, on synthetic clustered vectors.

Measures, for n crystals of 384-d vectors in clusters (as sentence embeddings are):
recall@10 of the hnswlib index against exact brute force, single-thread query latency,
build time, rebuild-from-SQLite time, load time of the saved index (checksum and structure
check included), insert throughput (index alone, and the whole path with duplicate check and
SQLite commit), RAM and disk per crystal, and end-to-end recall latency: message -> embedding
-> state blend -> index query -> SQLite fetch -> ranked prompt block.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ghostdesk.bench.report import BenchReport

MESSAGES = [
    "Do you remember where my sister lives?",
    "I had such a long day at work today.",
    "What should I cook for dinner tonight?",
    "My cat knocked over a plant again.",
    "I'm nervous about the marathon next month.",
    "Can you recommend a book for the weekend?",
    "I finally finished painting the kitchen.",
    "The rain hasn't stopped for three days.",
]


def clustered_vectors(n: int, dim: int, clusters: int, seed: int, spread: float = 1.0,
                      ) -> np.ndarray:
    """n unit vectors around `clusters` random centres (cosine to their centre ≈ 0.7)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for first in range(0, n, step):
        m = min(step, n - first)
        members = rng.integers(0, clusters, m)
        noise = rng.standard_normal((m, dim)).astype(np.float32) * (spread / np.sqrt(dim))
        part = centres[members] + noise
        out[first:first + m] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return out


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Brute-force top-k row numbers by cosine (rows are unit vectors)."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), k), dtype=np.int64)
    for first in range(0, len(data), 200_000):
        sims = queries @ data[first:first + 200_000].T
        part = np.argpartition(-sims, min(k, sims.shape[1] - 1), axis=1)[:, :k]
        scores = np.take_along_axis(sims, part, axis=1)
        both_scores = np.concatenate([best_scores, scores], axis=1)
        both_rows = np.concatenate([best_rows, part + first], axis=1)
        order = np.argsort(-both_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(both_scores, order, axis=1)
        best_rows = np.take_along_axis(both_rows, order, axis=1)
    return best_rows


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def run_memory_bench(
    n: int = 100_000,
    *,
    dim: int = 384,
    queries: int = 200,
    k: int = 10,
    clusters: int | None = None,
    M: int = 16,
    ef_construction: int = 200,
    ef_search: int = 64,
    ef_sweep: tuple[int, ...] = (32, 64, 128, 256),
    insert_sample: int = 500,
    e2e_queries: int = 100,
    embedder=None,
    folder: Path | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> BenchReport:
    """Run the benchmark at `n` crystals (1_000_000 for the large run: ~4 GB of RAM and a
    long build). `embedder` defaults to the bundled MiniLM (the real per-message cost);
    pass any fast `Embedder` for a quick smoke run (the tests pass a hashing one).
    Everything lives in `folder` (a temporary one by default, removed afterwards)."""
    from sqlalchemy import insert

    from ghostdesk.core.memory.clock import ManualClock
    from ghostdesk.core.memory.crystal_vectors import CrystalVectors
    from ghostdesk.core.memory.embedder import vector_to_bytes
    from ghostdesk.core.memory.service import MemoryService
    from ghostdesk.core.memory.settings import MemorySettings
    from ghostdesk.core.memory.vector_index import CrystalIndex
    from ghostdesk.core.store.db import Database
    from ghostdesk.core.store.models import Crystal

    say = progress or (lambda _msg: None)
    clusters = clusters or max(16, n // 500)
    if embedder is None:
        from ghostdesk.core.memory.embedder import SentenceEmbedder

        embedder = SentenceEmbedder()
    if embedder.dim != dim:
        raise ValueError(f"the embedder makes {embedder.dim}-d vectors, the bench uses {dim}")
    cleanup = None
    if folder is None:
        cleanup = tempfile.TemporaryDirectory(prefix="ghostdesk-bench-memory-")
        folder = Path(cleanup.name)
    folder = Path(folder)
    index_dir = folder / "memory"
    results: dict[str, float] = {}
    clock = ManualClock()
    db = Database.open(folder / "bench.sqlite3", folder / "backups")
    try:
        say(f"generating {n} clustered {dim}-d vectors in {clusters} clusters")
        data = clustered_vectors(n, dim, clusters, seed)
        rng = np.random.default_rng(seed + 1)

        say("writing crystals to SQLite")
        started = time.perf_counter()
        now = clock()
        for first in range(0, n, 20_000):
            rows = [{"kind": "fact", "text": f"Synthetic memory {i} about topic {i % clusters}.",
                     "source": None, "importance": 0.5, "pinned": False, "archived": False,
                     "created_at": now, "updated_at": now, "recall_count": 0,
                     "embed_model": embedder.name, "dim": dim,
                     "vector": vector_to_bytes(data[i])}
                    for i in range(first, min(n, first + 20_000))]
            with db.session() as s:
                s.execute(insert(Crystal), rows)
        results["sqlite_insert_s"] = time.perf_counter() - started
        store = CrystalVectors(db)
        ids = store.active_ids()
        ids.sort()

        say("building the index from memory (all cores)")
        rss_before = _rss()
        index = CrystalIndex(index_dir, dim, M=M, ef_construction=ef_construction,
                             ef_search=ef_search)
        started = time.perf_counter()
        index._index = index._new_index(int(n * 1.1) + 1024)
        index.add(ids, data)
        results["build_s"] = time.perf_counter() - started
        results["ram_bytes"] = max(0, _rss() - rss_before)
        started = time.perf_counter()
        index.save()
        results["save_s"] = time.perf_counter() - started
        results["index_bytes"] = index.path.stat().st_size

        say(f"recall@{k} against brute force over {queries} queries")
        picks = rng.integers(0, n, queries)
        noise = rng.standard_normal((queries, dim)).astype(np.float32) * (0.3 / np.sqrt(dim))
        qs = data[picks] + noise
        qs /= np.linalg.norm(qs, axis=1, keepdims=True)
        exact = ids[exact_top_k(data, qs, k)]
        sweep: list[tuple[int, float, float, float]] = []
        for ef in sorted(set(ef_sweep) | {ef_search}):
            index.ef_search = ef
            hits, times = 0, []
            for row, q in enumerate(qs):
                t0 = time.perf_counter()
                found, _ = index.query(q, k)
                times.append(time.perf_counter() - t0)
                hits += len(set(found.tolist()) & set(exact[row].tolist()))
            sweep.append((ef, hits / (k * queries), _pct(times, 50) * 1e3,
                          _pct(times, 99) * 1e3))
        index.ef_search = ef_search
        chosen = next(s for s in sweep if s[0] == ef_search)
        results.update(recall_at_k=chosen[1], query_p50_ms=chosen[2], query_p99_ms=chosen[3])

        say("index insert throughput (one crystal at a time)")
        extra = clustered_vectors(insert_sample, dim, clusters, seed + 2)
        started = time.perf_counter()
        for i, vector in enumerate(extra):
            index.add([10**9 + i], vector[None, :])
        results["index_insert_per_s"] = insert_sample / (time.perf_counter() - started)
        index.remove([10**9 + i for i in range(insert_sample)])
        index.close()
        del index

        say("rebuilding the index from SQLite")
        rebuilt = CrystalIndex(index_dir, dim, M=M, ef_construction=ef_construction,
                               ef_search=ef_search)
        started = time.perf_counter()
        rebuilt.rebuild(store)  # what a damaged or missing index costs at start-up
        results["rebuild_s"] = time.perf_counter() - started
        rebuilt.close()
        loaded = CrystalIndex(index_dir, dim, M=M, ef_construction=ef_construction,
                              ef_search=ef_search)
        started = time.perf_counter()
        load = loaded.open(store)
        results["load_s"] = time.perf_counter() - started
        results["load_clean"] = float(not load.rebuilt)
        loaded.close()
        del data

        say("end to end: message -> recalled crystals")
        settings = MemorySettings(threshold=-1.0, hnsw_m=M, hnsw_ef_construction=ef_construction,
                                  hnsw_ef_search=ef_search, save_interval_s=3600.0)
        memory = MemoryService(db, index_dir, embedder, settings=settings, clock=clock)
        memory.start()
        try:
            started = time.perf_counter()
            for i in range(insert_sample):
                memory.add_crystal(f"The user mentioned detail number {i} of {seed}.")
            results["service_insert_per_s"] = insert_sample / (time.perf_counter() - started)
            memory.recall_for(MESSAGES[0], touch=False)  # warm: loads the embedding model
            embed_times, e2e_times = [], []
            for i in range(e2e_queries):
                message = f"{MESSAGES[i % len(MESSAGES)]} ({i})"
                t0 = time.perf_counter()
                embedder.embed([message])
                embed_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                result = memory.recall_for(message, touch=False)
                e2e_times.append(time.perf_counter() - t0)
                assert result.crystals, "nothing recalled with the threshold off"
            results.update(e2e_p50_ms=_pct(e2e_times, 50) * 1e3,
                           e2e_p99_ms=_pct(e2e_times, 99) * 1e3,
                           embed_p50_ms=_pct(embed_times, 50) * 1e3)
        finally:
            memory.close()
        with db.read_session() as s:
            s.connection().exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        results["sqlite_bytes"] = (folder / "bench.sqlite3").stat().st_size
    finally:
        db.close()
        if cleanup is not None:
            cleanup.cleanup()
    return _report(n, dim, clusters, M, ef_construction, ef_search, k, queries, embedder.name,
                   results, sweep)


def _report(n: int, dim: int, clusters: int, M: int, ef_construction: int, ef_search: int,
            k: int, queries: int, embed_name: str, r: dict[str, float],
            sweep: list[tuple[int, float, float, float]]) -> BenchReport:
    report = BenchReport(f"Memory index: {n:,} crystals ({dim}-d, hnswlib M={M}, "
                         f"ef_construction={ef_construction}, ef={ef_search})")
    report.rows = [
        ("data", f"{n:,} synthetic unit vectors in {clusters:,} clusters; {queries} queries "
                 f"near stored points"),
        (f"recall@{k} vs brute force (ef={ef_search})", f"{r['recall_at_k']:.4f}"),
        ("query latency p50 / p99, one thread", f"{r['query_p50_ms']:.2f} / "
                                                 f"{r['query_p99_ms']:.2f} ms"),
        ("ef sweep: ef → recall, p50, p99",
         "; ".join(f"{ef} → {rec:.4f}, {p50:.2f}, {p99:.2f} ms" for ef, rec, p50, p99 in sweep)),
        ("build from memory, all cores", f"{r['build_s']:.1f} s "
                                         f"({n / max(r['build_s'], 1e-9):,.0f} crystals/s)"),
        ("rebuild from SQLite (read + build + save)", f"{r['rebuild_s']:.1f} s"),
        ("load of the saved index (checksum + structure check + hnswlib)",
         f"{r['load_s']:.2f} s{'' if r['load_clean'] else ' (rebuilt!)'}"),
        ("save (write, fsync, check, checksum)", f"{r['save_s']:.2f} s"),
        ("insert, index only, one at a time", f"{r['index_insert_per_s']:,.0f} /s"),
        ("insert through MemoryService (embed + duplicate check + SQLite commit + index)",
         f"{r['service_insert_per_s']:,.0f} /s"),
        ("SQLite bulk write", f"{n / max(r['sqlite_insert_s'], 1e-9):,.0f} rows/s"),
        ("RAM per crystal (index, RSS growth)", f"{r['ram_bytes'] / n:,.0f} B"),
        ("disk per crystal: index / SQLite", f"{r['index_bytes'] / n:,.0f} B / "
                                              f"{r['sqlite_bytes'] / n:,.0f} B"),
        (f"end to end message → crystals p50 / p99 ({embed_name})",
         f"{r['e2e_p50_ms']:.1f} / {r['e2e_p99_ms']:.1f} ms "
         f"(embedding alone p50 {r['embed_p50_ms']:.1f} ms)"),
        ("CPU threads", str(os.cpu_count())),
    ]
    meets = next((ef for ef, rec, _, _ in sweep if rec >= 0.98), None)
    report.verdicts = [
        f"recall@{k} {r['recall_at_k']:.4f} {'meets' if r['recall_at_k'] >= 0.98 else 'misses'}"
        f" the ≥ 0.98 target at ef={ef_search}"
        + (f"; the smallest swept ef that meets it is {meets}" if meets else ""),
    ]
    report.data = {"n": n, "dim": dim, "clusters": clusters, "M": M,
                   "ef_construction": ef_construction, "ef_search": ef_search, **r,
                   "ef_sweep": [{"ef": ef, "recall": rec, "p50_ms": p50, "p99_ms": p99}
                                for ef, rec, p50, p99 in sweep]}
    return report

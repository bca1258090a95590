"""Recall from one thread while another adds, archives and forgets crystals: nothing crashes
(hnswlib is never entered by two threads at once) and SQLite and the index agree after."""

from __future__ import annotations

import random
import threading
import time

from ghostdesk.core.memory import vector_index
from ghostdesk.core.memory.service import MemoryService

WORDS = [
    "cello", "garden", "tomato", "marathon", "coffee", "sister", "chengdu", "nurse", "pixel",
    "cat", "jazz", "bread", "rain", "laptop", "kitchen", "green", "ramen", "football", "novel",
    "bicycle", "tea", "autumn", "japan",
]


def _text(rng: random.Random) -> str:
    return " ".join(rng.sample(WORDS, 4)) + f" {rng.randrange(10**6)}"


def test_recall_while_adding_for_two_seconds(make_memory, hashing, monkeypatch):
    # A tiny capacity makes the index grow (resize_index) again and again while queries run.
    monkeypatch.setattr(vector_index, "MIN_CAPACITY", 8)
    memory: MemoryService = make_memory(hashing, save_interval_s=0.2, threshold=0.0)
    resizes = []
    real_add = memory.index._add_locked

    def counting_add(ids, vectors):
        before = memory.index._index.max_elements
        real_add(ids, vectors)
        if memory.index._index.max_elements != before:
            resizes.append(before)

    monkeypatch.setattr(memory.index, "_add_locked", counting_add)
    seed = random.Random(1)
    for _ in range(50):
        memory.add_crystal(_text(seed))
    stop = threading.Event()
    errors: list[BaseException] = []
    counts = {"recalls": 0, "adds": 0, "forgets": 0, "archives": 0}

    def recaller() -> None:
        rng = random.Random(2)
        try:
            while not stop.is_set():
                result = memory.recall_for(_text(rng))
                for r in result.crystals:
                    assert r.similarity >= memory.settings.threshold
                counts["recalls"] += 1
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    def writer() -> None:
        rng = random.Random(3)
        try:
            while not stop.is_set():
                absorbed = memory.add_crystal(_text(rng))
                counts["adds"] += 1
                roll = rng.random()
                if roll < 0.1:
                    memory.forget(absorbed.crystal.id)
                    counts["forgets"] += 1
                elif roll < 0.2:
                    memory.archive(absorbed.crystal.id)
                    counts["archives"] += 1
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=recaller), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert counts["recalls"] > 10 and counts["adds"] > 10, counts
    assert len(resizes) >= 2
    report = memory.check_consistency()
    assert report.ok, report
    assert report.sqlite_active == memory.crystals.count(archived=False)
    # And the saved index, reopened, agrees too.
    memory.close()
    again = make_memory(hashing)
    assert again.check_consistency().ok

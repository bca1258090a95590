"""Fixtures for the memory tests: a real SQLite database and hnswlib index in a temporary
data folder, a hand-moved clock (memory and the conversation store share it), the hashing
embedder where meaning doesn't matter and the bundled MiniLM model (loaded once per session)
where it does."""

from __future__ import annotations

import pytest

from ghostdesk.core.memory.clock import ManualClock
from ghostdesk.core.memory.embedder import SentenceEmbedder
from ghostdesk.core.memory.service import MEMORY_FOLDER, MemoryService
from ghostdesk.core.memory.settings import MemorySettings
from ghostdesk.core.paths import DataPaths
from ghostdesk.core.store.db import Database
from tests.fakes import HashingEmbedder


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hashing() -> HashingEmbedder:
    return HashingEmbedder(dim=384)


@pytest.fixture(scope="session")
def minilm() -> SentenceEmbedder:
    """The bundled all-MiniLM-L6-v2, from the installed package, offline, one thread."""
    embedder = SentenceEmbedder(threads=1)
    embedder.load()
    return embedder


@pytest.fixture
def make_memory(db: Database, paths: DataPaths, clock: ManualClock):
    """Opens a MemoryService on the test's database: make_memory(embedder, **settings).
    Each is closed at the end of the test. save_interval_s=0 unless given: every change is
    saved at once, so a reopened service sees it."""
    opened: list[MemoryService] = []

    def make(embedder, **settings) -> MemoryService:
        settings.setdefault("save_interval_s", 0.0)
        service = MemoryService.open(db, paths.root / MEMORY_FOLDER, embedder, clock=clock,
                                     settings=MemorySettings(**settings))
        opened.append(service)
        return service

    yield make
    for service in opened:
        service.close()


@pytest.fixture
def memory(make_memory, hashing: HashingEmbedder) -> MemoryService:
    return make_memory(hashing)

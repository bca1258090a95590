"""Fixtures shared by the core tests: the test's data folder, its open database, a clock that
steps on every call, and a conversation store on that clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ghostdesk.core.paths import HOME_ENV, DataPaths
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import Database


class SteppingClock:
    """Each call is one second later than the previous one, so orderings are deterministic;
    `advance` jumps ahead."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def paths(ghostdesk_home: Path) -> DataPaths:
    """The data folder of this test (tests/conftest.py points GHOSTDESK_HOME at a temp dir)."""
    assert os.environ[HOME_ENV] == str(ghostdesk_home)
    return DataPaths.default().ensure()


@pytest.fixture
def db(paths: DataPaths) -> Iterator[Database]:
    database = Database.open(paths.database, paths.backups)
    yield database
    database.close()


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def store(db: Database, clock) -> ConversationStore:
    """Conversations in the test's database, timed by the `clock` fixture."""
    return ConversationStore(db, clock=clock)

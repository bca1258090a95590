"""Fixtures for the store tests: a real SQLite database in a temporary data folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ghostdesk.core.paths import HOME_ENV, DataPaths
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import Database


class FakeClock:
    """Each call is one second later than the previous one, so orderings are deterministic."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


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
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db: Database, clock: FakeClock) -> ConversationStore:
    return ConversationStore(db, clock=clock)

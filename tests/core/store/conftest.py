"""Fixtures for the store tests: a real SQLite database in a temporary data folder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

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
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db: Database, clock: FakeClock) -> ConversationStore:
    return ConversationStore(db, clock=clock)

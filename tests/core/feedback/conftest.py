"""Fixtures for the feedback tests: a real SQLite database, a store and a ledger on one clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ghostdesk.core.feedback.ledger import RewardLedger
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import Database


class SteppingClock:
    """Each call is one second later than the previous one; `advance` jumps ahead."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)




@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def store(db: Database, clock: SteppingClock) -> ConversationStore:
    return ConversationStore(db, clock=clock)


@pytest.fixture
def ledger(db: Database, clock: SteppingClock) -> RewardLedger:
    return RewardLedger(db, clock=clock)


@pytest.fixture
def reply(store: ConversationStore) -> int:
    """A conversation with one exchange; the companion's reply id."""
    cid = store.create_conversation().id
    store.add_message(cid, "user", "hello")
    return store.add_message(cid, "assistant", "hi there").id

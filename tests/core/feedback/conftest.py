"""Fixtures for the feedback tests: a ledger on the store's stepping clock, and a reply to rate."""

from __future__ import annotations

import pytest

from ghostdesk.core.feedback.ledger import RewardLedger
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import Database


@pytest.fixture
def ledger(db: Database, clock) -> RewardLedger:
    """The ledger on the same stepping clock as `store` (tests/core/conftest.py)."""
    return RewardLedger(db, clock=clock)


@pytest.fixture
def reply(store: ConversationStore) -> int:
    """A conversation with one exchange; the companion's reply id."""
    cid = store.create_conversation().id
    store.add_message(cid, "user", "hello")
    return store.add_message(cid, "assistant", "hi there").id

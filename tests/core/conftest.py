"""Fixtures shared by the core tests: the test's data folder and its open database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghostdesk.core.paths import HOME_ENV, DataPaths
from ghostdesk.core.store.db import Database


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

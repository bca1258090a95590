"""Every test gets its own data folder and no display."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def ghostdesk_home(tmp_path, monkeypatch):
    home = tmp_path / "ghostdesk-home"
    home.mkdir()
    monkeypatch.setenv("GHOSTDESK_HOME", str(home))
    return home

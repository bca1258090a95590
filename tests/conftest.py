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


@pytest.fixture(autouse=True)
def hashing_embedder(request, monkeypatch):
    """Memory in app-level tests embeds with a tiny deterministic hashing embedder: loading
    MiniLM takes seconds and the words don't matter there. Tests about recall quality build
    their own SentenceEmbedder, or use the `real_embedder` marker to keep the real one."""
    if request.node.get_closest_marker("real_embedder"):
        return
    from tests.fakes import HashingEmbedder

    monkeypatch.setattr("ghostdesk.services.make_embedder", lambda: HashingEmbedder())

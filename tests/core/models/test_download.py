"""Model downloads against a local server: resume, pause, checksum, full disk, server down."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
from collections import namedtuple

import pytest

from ghostdesk.core.models import part_file
from ghostdesk.core.models.catalogue import CatalogueModel
from ghostdesk.core.models.download import ModelDownload, download_for
from ghostdesk.core.models.download_events import (
    ChecksumMismatch,
    DownloadCancelled,
    DownloadError,
    DownloadFinished,
    DownloadPaused,
    DownloadProgress,
    DownloadRetrying,
    DownloadStarted,
    NotEnoughSpace,
)
from ghostdesk.core.models.http_transfer import hf_resolve_url
from tests.fake_hub import FakeHub

REPO, NAME = "someone/Tiny-GGUF", "tiny-Q4_K_M.gguf"
DATA = os.urandom(300 * 1024)
CHUNK = 16 * 1024
Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def folder(tmp_path):
    """The download folder (tmp_path itself also holds the test's data folder)."""
    path = tmp_path / "models"
    path.mkdir()
    return path


@pytest.fixture
def hub():
    server = FakeHub().start()
    yield server
    server.stop()


def make(url: str, folder, **kw) -> ModelDownload:
    kw.setdefault("chunk_bytes", CHUNK)
    kw.setdefault("progress_interval_s", 0.0)
    kw.setdefault("retry_wait_s", 0.01)
    kw.setdefault("timeout", 5.0)
    return ModelDownload(url, folder / NAME, **kw)


def test_a_download_ends_as_the_verified_file_and_nothing_else(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    events = list(make(url, folder).run())
    assert isinstance(events[0], DownloadStarted) and events[0].resumed_from == 0
    assert events[0].total_bytes == len(DATA)
    finished = events[-1]
    assert isinstance(finished, DownloadFinished) and finished.verified
    assert finished.sha256 == hashlib.sha256(DATA).hexdigest()
    assert (folder / NAME).read_bytes() == DATA
    assert sorted(p.name for p in folder.iterdir()) == [NAME]  # no .part, no .part.json
    progress = [e for e in events if isinstance(e, DownloadProgress)]
    assert progress[-1].done_bytes == len(DATA) and progress[-1].fraction == 1.0
    assert [r.range for r in hub.gets()] == [None]


def test_it_resumes_an_interrupted_download_with_a_range_request(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    hub.behaviour.cut_after_bytes, hub.behaviour.cuts_left = 100 * 1024, 1
    with pytest.raises(DownloadError, match="What was downloaded is kept"):
        list(make(url, folder, retries=0).run())
    part = folder / (NAME + ".part")
    kept = part.stat().st_size
    assert 0 < kept < len(DATA)
    assert not (folder / NAME).exists()

    events = list(make(url, folder).run())
    started = next(e for e in events if isinstance(e, DownloadStarted))
    assert started.resumed_from == kept
    assert hub.gets()[-1].range == f"bytes={kept}-"
    assert isinstance(events[-1], DownloadFinished) and events[-1].verified
    assert (folder / NAME).read_bytes() == DATA
    assert not part.exists()


def test_a_dropped_connection_is_retried_from_where_it_stopped(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    hub.behaviour.cut_after_bytes, hub.behaviour.cuts_left = 64 * 1024, 2
    events = list(make(url, folder, retries=3).run())
    retries = [e for e in events if isinstance(e, DownloadRetrying)]
    assert [r.attempt for r in retries] == [1, 2]
    assert [r.range for r in hub.gets()][1:] == [f"bytes={r.done_bytes}-" for r in retries]
    assert (folder / NAME).read_bytes() == DATA


def test_pause_keeps_the_part_and_run_again_finishes(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    hub.behaviour.send_slowly_s = 0.005
    download = make(url, folder)
    events = []
    for event in download.run():
        events.append(event)
        if isinstance(event, DownloadProgress) and event.done_bytes >= 2 * CHUNK:
            download.pause()
    assert isinstance(events[-1], DownloadPaused)
    assert 0 < events[-1].done_bytes < len(DATA)
    assert (folder / (NAME + ".part")).stat().st_size == events[-1].done_bytes
    assert not (folder / NAME).exists()

    hub.behaviour.send_slowly_s = 0.0
    assert isinstance(list(download.run())[-1], DownloadFinished)
    assert (folder / NAME).read_bytes() == DATA


def test_closing_the_generator_midway_also_keeps_the_part(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    events = make(url, folder).run()
    for event in events:
        if isinstance(event, DownloadProgress) and event.done_bytes > 0:
            break
    events.close()
    assert (folder / (NAME + ".part")).stat().st_size > 0
    assert isinstance(list(make(url, folder).run())[-1], DownloadFinished)
    assert (folder / NAME).read_bytes() == DATA


def test_cancel_deletes_what_was_downloaded(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    download = make(url, folder)
    events = []
    for event in download.run():
        events.append(event)
        if isinstance(event, DownloadProgress) and event.done_bytes > 0:
            download.cancel()
    assert isinstance(events[-1], DownloadCancelled)
    assert list(folder.iterdir()) == []


def test_a_checksum_mismatch_leaves_no_file_at_all(hub, folder):
    url = hub.host(REPO, NAME, DATA, published_sha256="ab" * 32)
    with pytest.raises(ChecksumMismatch, match="damaged"):
        list(make(url, folder).run())
    assert list(folder.iterdir()) == []


def test_a_catalogue_checksum_the_server_contradicts_stops_before_downloading(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    with pytest.raises(DownloadError, match="not the one GhostDesk expects"):
        list(make(url, folder, expected_sha256="cd" * 32).run())
    assert hub.gets() == [] and list(folder.iterdir()) == []


def test_the_catalogue_checksum_is_checked_when_the_server_publishes_none(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    hub.behaviour.redirect = False  # a plain server: size from Content-Length, ETag not a hash
    hub.files[f"{REPO}/{NAME}"].published_sha256 = "not-a-hash"
    with pytest.raises(ChecksumMismatch):
        list(make(url, folder, expected_sha256="ef" * 32).run())
    good = hashlib.sha256(DATA).hexdigest()
    finished = list(make(url, folder, expected_sha256=good).run())[-1]
    assert finished.verified and (folder / NAME).read_bytes() == DATA


def test_not_enough_free_space_is_said_before_any_byte_is_written(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    download = make(url, folder, disk_usage=lambda _p: Usage(10**9, 10**9, 1000))
    with pytest.raises(NotEnoughSpace, match="needs 307 kB more and 1.0 kB is free"):
        list(download.run())
    assert hub.gets() == [] and list(folder.iterdir()) == []


def test_a_disk_that_fills_up_midway_keeps_the_part_for_later(hub, folder, monkeypatch):
    url = hub.host(REPO, NAME, DATA)
    writes = {"n": 0}
    real_write = part_file.write_chunk

    def full_after_three(fh, data):
        writes["n"] += 1
        if writes["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fh, data)

    monkeypatch.setattr(part_file, "write_chunk", full_after_three)
    with pytest.raises(NotEnoughSpace, match="became full"):
        list(make(url, folder).run())
    assert not (folder / NAME).exists()
    assert (folder / (NAME + ".part")).stat().st_size == 3 * CHUNK

    monkeypatch.setattr(part_file, "write_chunk", real_write)
    assert isinstance(list(make(url, folder).run())[-1], DownloadFinished)
    assert (folder / NAME).read_bytes() == DATA


def test_a_server_that_is_down_gives_a_clear_message(folder):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = hf_resolve_url(REPO, NAME, endpoint=f"http://127.0.0.1:{port}")
    with pytest.raises(DownloadError, match="refused the connection") as info:
        list(make(url, folder).run())
    assert "internet connection" in (info.value.hint or "")
    assert list(folder.iterdir()) == []


def test_offline_is_said_as_offline(folder, monkeypatch):
    def no_dns(*_a, **_k):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(DownloadError, match="seems to be offline"):
        list(make("https://huggingface.co/a/b/resolve/main/c.gguf", folder).run())


def test_missing_files_and_server_errors_are_explained(hub, folder):
    with pytest.raises(DownloadError, match="not found"):
        list(make(f"{hub.endpoint}/{REPO}/resolve/main/nope.gguf", folder).run())
    hub.behaviour.status_override = 403
    with pytest.raises(DownloadError, match="licence"):
        list(make(hub.host(REPO, NAME, DATA), folder).run())


def test_a_server_that_ignores_ranges_is_downloaded_again_from_the_start(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    hub.behaviour.cut_after_bytes, hub.behaviour.cuts_left = 50 * 1024, 1
    with pytest.raises(DownloadError):
        list(make(url, folder, retries=0).run())
    hub.behaviour.ignore_range = True
    finished = list(make(url, folder).run())[-1]
    assert finished.verified and (folder / NAME).read_bytes() == DATA


def test_a_part_of_another_file_is_not_resumed(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    (folder / (NAME + ".part")).write_bytes(b"x" * 1000)
    (folder / (NAME + ".part.json")).write_text(json.dumps({"size": 5, "sha256": "00"}))
    events = list(make(url, folder).run())
    assert next(e for e in events if isinstance(e, DownloadStarted)).resumed_from == 0
    assert (folder / NAME).read_bytes() == DATA


def test_a_file_already_downloaded_is_not_fetched_again(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    (folder / NAME).write_bytes(DATA)
    (finished,) = list(make(url, folder).run())
    assert finished.already_present and hub.requests == []


def test_speed_and_eta_come_from_the_recent_bytes(hub, folder):
    url = hub.host(REPO, NAME, DATA)
    ticks = iter(range(10_000))
    events = list(make(url, folder, clock=lambda: float(next(ticks))).run())
    progress = [e for e in events if isinstance(e, DownloadProgress) and e.bytes_per_second]
    assert progress
    middle = progress[len(progress) // 2]
    assert middle.bytes_per_second == pytest.approx(CHUNK, rel=0.01)  # one chunk per tick
    assert middle.eta_seconds == pytest.approx(
        (len(DATA) - middle.done_bytes) / middle.bytes_per_second)


def test_catalogue_models_download_from_the_configured_endpoint(hub, folder, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.host(REPO, NAME, DATA)
    model = CatalogueModel(id="tiny", tier="cpu", name="Tiny", repo_id=REPO, filename=NAME,
                           size_bytes=len(DATA), licence="Apache-2.0")
    download = download_for(model, folder / "sub", chunk_bytes=CHUNK)
    assert download.url == f"{hub.endpoint}/{REPO}/resolve/main/{NAME}"
    assert list(download.run())[-1].path == folder / "sub" / NAME

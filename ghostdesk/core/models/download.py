"""Download a model file: resumable, checked, and never leaving half a file where a model goes.

    download = ModelDownload(url, folder / "model.gguf", expected_sha256=...)
    for event in download.run():      # a generator of events; runs in the caller's thread
        ...                           # DownloadProgress has speed and ETA
    download.pause()                  # from another thread: stops after the current chunk

The bytes go to `<name>.part` (with `<name>.part.json` describing what it is a part of). A
later `run()` resumes from the part with an HTTP range request, re-reading the part to
continue its SHA-256. Only when every byte is there and the checksum matches does the part
become `<name>` (an atomic rename), so a file under the final name is always complete.

The server is asked first for the size and the SHA-256 it publishes (Hugging Face sends both
for every large file); the free disk space is checked before a byte is written. Nothing here
talks to the network until `run()` is iterated, and only to the URL given.

This module runs the steps and reports them; the parts are elsewhere: the events and errors
in `download_events`, the HTTP side in `http_transfer`, the checksums in `checksum`, and the
part file on disk in `part_file`.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ghostdesk.core.models import part_file
from ghostdesk.core.models.catalogue import CatalogueModel, format_size
from ghostdesk.core.models.checksum import RunningChecksum, checksum_mismatch, expected_checksum
from ghostdesk.core.models.download_events import (
    DownloadCancelled,
    DownloadError,
    DownloadEvent,
    DownloadFinished,
    DownloadPaused,
    DownloadProgress,
    DownloadRetrying,
    DownloadStarted,
    DownloadVerifying,
)
from ghostdesk.core.models.http_transfer import (
    Interrupted,
    RemoteFile,
    TransferSpeed,
    hf_resolve_url,
    open_from,
    probe_remote,
    read_chunk,
)
from ghostdesk.core.models.part_file import DISK_RESERVE_BYTES, PartFile

CHUNK_BYTES = 1024 * 1024


def download_for(model: CatalogueModel, folder: Path, **kwargs: Any) -> ModelDownload:
    """A download of a catalogue model into `folder` (usually the data folder's models/)."""
    url = hf_resolve_url(model.repo_id, model.filename, model.revision)
    return ModelDownload(url, Path(folder) / model.filename, expected_sha256=model.sha256,
                         **kwargs)


class ModelDownload:
    def __init__(
        self,
        url: str,
        dest: str | Path,
        *,
        expected_sha256: str = "",
        chunk_bytes: int = CHUNK_BYTES,
        timeout: float = 30.0,
        retries: int = 3,
        retry_wait_s: float = 2.0,
        progress_interval_s: float = 0.25,
        disk_reserve_bytes: int = DISK_RESERVE_BYTES,
        disk_usage: Callable[[Path], Any] = shutil.disk_usage,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.dest = Path(dest)
        self.part = PartFile(self.dest, disk_reserve_bytes=disk_reserve_bytes,
                             disk_usage=disk_usage)
        self.expected_sha256 = expected_sha256.lower()
        self.chunk_bytes = chunk_bytes
        self.timeout = timeout
        self.retries = retries
        self.retry_wait_s = retry_wait_s
        self.progress_interval_s = progress_interval_s
        self._clock = clock
        self._pause = threading.Event()
        self._cancel = threading.Event()

    # -- control, from any thread -------------------------------------------------------------

    def pause(self) -> None:
        """Stop after the current chunk; the part stays, and `run()` again resumes it."""
        self._pause.set()

    def cancel(self) -> None:
        """Stop and delete what was downloaded."""
        self._cancel.set()

    @property
    def partial_bytes(self) -> int:
        """Bytes already in the part file (0 when there is none)."""
        return self.part.size

    # -- the generator ------------------------------------------------------------------------

    def run(self) -> Iterator[DownloadEvent]:
        """Download (or resume) and yield events; raises DownloadError on failure."""
        self._pause.clear()
        self._cancel.clear()
        if self.dest.is_file():
            yield DownloadFinished(self.dest, "", self.dest.stat().st_size, verified=False,
                                   already_present=True)
            return
        remote = self.probe()
        expected = expected_checksum(self.dest.name, self.expected_sha256, remote.sha256)
        self.part.ensure_folder()
        offset = self.part.reusable_bytes(remote)
        self.part.check_space(remote.size - offset)
        self.part.write_meta(remote)

        checksum = RunningChecksum()
        if offset:
            yield from self._hash_existing(checksum, remote.size)
            if self._stopping():
                return
        yield DownloadStarted(remote.size, checksum.length)

        attempt = 0
        while True:
            try:
                yield from self._stream(remote, checksum)
                if self._stopping():
                    return
                break
            except Interrupted as err:
                attempt += 1
                done = self.partial_bytes
                if attempt > self.retries:
                    raise DownloadError(
                        f"The download stopped after {format_size(done)} of "
                        f"{format_size(remote.size)}: {err}",
                        hint="What was downloaded is kept: start the download again to "
                             "continue where it stopped.",
                    ) from err
                yield DownloadRetrying(attempt, str(err), done)
                if self._wait_or_stop(self.retry_wait_s * attempt):
                    yield from self._stop_event(remote.size)
                    return
                if self.partial_bytes != checksum.length:
                    # The part and the running checksum disagree (a write failed half way):
                    # read the part again rather than guess.
                    checksum.reset()
                    yield from self._hash_existing(checksum, remote.size)
                    if self._stopping():
                        return

        yield DownloadVerifying(remote.size, remote.size)
        digest = checksum.hexdigest()
        if expected and digest != expected:
            self.part.discard()
            raise checksum_mismatch(self.dest.name, digest, expected)
        self.part.promote()
        yield DownloadFinished(self.dest, digest, remote.size, verified=bool(expected))

    # -- steps --------------------------------------------------------------------------------

    def probe(self) -> RemoteFile:
        """Ask the server for the file's size and published SHA-256."""
        return probe_remote(self.url, self.dest.name, timeout=self.timeout)

    def _hash_existing(self, checksum: RunningChecksum, total: int) -> Iterator[DownloadEvent]:
        """Feed the part's bytes to `checksum` (which must be empty), with progress."""
        size, last = self.partial_bytes, self._clock()
        try:
            for checked in checksum.feed_file(self.part.path, size, 8 * self.chunk_bytes):
                if self._stopping():
                    yield from self._stop_event(total)
                    return
                now = self._clock()
                if now - last >= self.progress_interval_s:
                    last = now
                    yield DownloadVerifying(checked, total)
        except OSError as err:
            raise self.part.disk_error(err) from err
        if checksum.length != self.partial_bytes:  # the part changed under us: start over
            self.part.discard()
            checksum.reset()
        yield DownloadVerifying(checksum.length, total)

    def _stream(self, remote: RemoteFile, checksum: RunningChecksum) -> Iterator[DownloadEvent]:
        offset = self.partial_bytes
        if offset >= remote.size:
            return
        opened = open_from(remote, offset, self.dest.name, timeout=self.timeout)
        if opened is None:
            return
        response, start = opened
        with response:
            mode = "ab"
            if start != offset:
                offset, mode = 0, "wb"  # the server ignored the range: start over
                checksum.reset()
            done = offset
            speed = TransferSpeed()
            last = self._clock()
            speed.add(done, last)
            yield DownloadProgress(done, remote.size, 0.0, None)
            try:
                with self.part.path.open(mode) as fh:
                    while done < remote.size:
                        if self._stopping():
                            part_file.sync(fh)
                            break
                        data = read_chunk(response, min(self.chunk_bytes, remote.size - done))
                        try:
                            part_file.write_chunk(fh, data)
                        except OSError as err:
                            raise self.part.disk_error(err) from err
                        checksum.update(data)
                        done += len(data)
                        now = self._clock()
                        if now - last >= self.progress_interval_s or done == remote.size:
                            last = now
                            rate = speed.add(done, now)
                            eta = (remote.size - done) / rate if rate > 0 else None
                            yield DownloadProgress(done, remote.size, rate, eta)
                    else:
                        part_file.sync(fh)
            except OSError as err:  # closing / syncing the part
                raise self.part.disk_error(err) from err
        if self._stopping():
            yield from self._stop_event(remote.size)

    def _stopping(self) -> bool:
        return self._pause.is_set() or self._cancel.is_set()

    def _stop_event(self, total: int) -> Iterator[DownloadEvent]:
        if self._cancel.is_set():
            self.part.discard()
            yield DownloadCancelled()
        else:
            yield DownloadPaused(self.partial_bytes, total)

    def _wait_or_stop(self, seconds: float) -> bool:
        """Wait before a retry; True when pause or cancel was asked meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopping():
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return self._stopping()

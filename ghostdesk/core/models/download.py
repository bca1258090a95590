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
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any, BinaryIO

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.models.catalogue import CatalogueModel, format_size

DEFAULT_ENDPOINT = "https://huggingface.co"
ENDPOINT_ENV = "HF_ENDPOINT"
"""The same variable huggingface_hub reads, so a mirror set for one is used by both."""
PART_SUFFIX = ".part"
META_SUFFIX = ".part.json"
CHUNK_BYTES = 1024 * 1024
DISK_RESERVE_BYTES = 256 * 1024 * 1024
"""Left free on the disk after a download, so the database can still be written."""
USER_AGENT = "GhostDesk-model-download/1"
_SPEED_WINDOW_S = 5.0


class DownloadError(GhostDeskError):
    """A download could not go on. What was downloaded so far is kept unless the message
    says otherwise."""


class ChecksumMismatch(DownloadError):
    """The finished file is not the expected one; the part was deleted."""


class NotEnoughSpace(DownloadError):
    """The disk is (or would become) too full."""


# --- events -------------------------------------------------------------------------------

@dataclass(frozen=True)
class DownloadStarted:
    total_bytes: int
    resumed_from: int
    """Bytes already there from an earlier, interrupted download."""


@dataclass(frozen=True)
class DownloadProgress:
    done_bytes: int
    total_bytes: int
    bytes_per_second: float
    eta_seconds: float | None
    """None until the speed is known."""

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class DownloadVerifying:
    """Reading back what an earlier attempt downloaded, to continue its checksum."""

    checked_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class DownloadRetrying:
    attempt: int
    reason: str
    done_bytes: int


@dataclass(frozen=True)
class DownloadPaused:
    done_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class DownloadCancelled:
    pass


@dataclass(frozen=True)
class DownloadFinished:
    path: Path
    sha256: str
    total_bytes: int
    verified: bool
    """True when the checksum was compared with a published one (and matched)."""
    already_present: bool = False


DownloadEvent = (DownloadStarted | DownloadProgress | DownloadVerifying | DownloadRetrying
                 | DownloadPaused | DownloadCancelled | DownloadFinished)


@dataclass(frozen=True)
class RemoteFile:
    url: str
    size: int
    sha256: str
    """The SHA-256 the server publishes for the file ("" when it publishes none)."""
    etag: str


# --- urls ---------------------------------------------------------------------------------

def hf_endpoint() -> str:
    return (os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")


def hf_resolve_url(repo_id: str, filename: str, revision: str = "main",
                   endpoint: str | None = None) -> str:
    """The Hugging Face download URL of one file in a model repository."""
    base = (endpoint or hf_endpoint()).rstrip("/")
    return (f"{base}/{repo_id}/resolve/{urllib.parse.quote(revision, safe='')}/"
            f"{urllib.parse.quote(filename)}")


def download_for(model: CatalogueModel, folder: Path, **kwargs: Any) -> ModelDownload:
    """A download of a catalogue model into `folder` (usually the data folder's models/)."""
    url = hf_resolve_url(model.repo_id, model.filename, model.revision)
    return ModelDownload(url, Path(folder) / model.filename, expected_sha256=model.sha256,
                         **kwargs)


# --- the download ---------------------------------------------------------------------------

class _Interrupted(Exception):
    """The connection ended early or failed in a way worth retrying."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


def _write_chunk(fh: BinaryIO, data: bytes) -> None:
    fh.write(data)


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
        self.part_path = self.dest.with_name(self.dest.name + PART_SUFFIX)
        self.meta_path = self.dest.with_name(self.dest.name + META_SUFFIX)
        self.expected_sha256 = expected_sha256.lower()
        self.chunk_bytes = chunk_bytes
        self.timeout = timeout
        self.retries = retries
        self.retry_wait_s = retry_wait_s
        self.progress_interval_s = progress_interval_s
        self.disk_reserve_bytes = disk_reserve_bytes
        self._disk_usage = disk_usage
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
        try:
            return self.part_path.stat().st_size
        except OSError:
            return 0

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
        expected = self._expected_checksum(remote)
        self._ensure_folder()
        offset = self._reusable_part(remote)
        self._check_space(remote.size - offset)
        self._write_meta(remote)

        checksum = _Checksum()
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
            except _Interrupted as err:
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
            self._discard_part()
            raise ChecksumMismatch(
                f"The downloaded file {self.dest.name} is damaged: its SHA-256 is {digest}, "
                f"not {expected}. It was deleted.",
                hint="Try the download again. If it fails again, the file on the server may "
                     "have changed; choose another model or a file on disk.",
            )
        self._promote()
        yield DownloadFinished(self.dest, digest, remote.size, verified=bool(expected))

    # -- steps --------------------------------------------------------------------------------

    def probe(self) -> RemoteFile:
        """Ask the server for the file's size and published SHA-256 (a HEAD request; the
        redirects are followed by hand so Hugging Face's X-Linked-* headers are seen)."""
        opener = urllib.request.build_opener(_NoRedirect())
        url, size, checksum, etag = self.url, -1, "", ""
        for _ in range(6):
            request = urllib.request.Request(url, method="HEAD",
                                             headers={"User-Agent": USER_AGENT,
                                                      "Accept-Encoding": "identity"})
            try:
                response = opener.open(request, timeout=self.timeout)
                status, headers = response.status, response.headers
                response.close()
            except urllib.error.HTTPError as err:
                status, headers = err.code, err.headers
                err.close()
                if not 300 <= status < 400:
                    raise self._http_error(status) from err
            except (urllib.error.URLError, OSError) as err:
                raise self._network_error(err) from err
            checksum = checksum or _sha256_header(headers.get("X-Linked-Etag", ""))
            if size < 0 and headers.get("X-Linked-Size", "").isdigit():
                size = int(headers["X-Linked-Size"])
            etag = etag or headers.get("X-Linked-Etag", "") or headers.get("ETag", "")
            if 300 <= status < 400:
                location = headers.get("Location")
                if not location:
                    raise DownloadError(f"The server at {_host(url)} sent a redirect "
                                        "without a location.")
                if size >= 0:
                    break  # Hugging Face: the size and checksum come with the redirect
                url = urllib.parse.urljoin(url, location)
                continue
            if size < 0 and headers.get("Content-Length", "").isdigit():
                size = int(headers["Content-Length"])
            checksum = checksum or _sha256_header(headers.get("ETag", ""))
            break
        else:
            raise DownloadError(f"The server at {_host(self.url)} redirected too many times.")
        if size <= 0:
            raise DownloadError(f"The server at {_host(self.url)} did not say how large "
                                f"{self.dest.name} is, so it can't be downloaded safely.")
        return RemoteFile(self.url, size, checksum, etag.strip('"'))

    def _expected_checksum(self, remote: RemoteFile) -> str:
        if self.expected_sha256 and remote.sha256 and self.expected_sha256 != remote.sha256:
            raise DownloadError(
                f"The file {self.dest.name} on the server is not the one GhostDesk expects "
                f"(published SHA-256 {remote.sha256}, expected {self.expected_sha256}).",
                hint="Nothing was downloaded. Choose another model or a file on disk.",
            )
        return self.expected_sha256 or remote.sha256

    def _ensure_folder(self) -> None:
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DownloadError(f"Could not create the folder {self.dest.parent}: "
                                f"{err.strerror or err}.") from err

    def _reusable_part(self, remote: RemoteFile) -> int:
        """Bytes of an earlier part that belong to this same file; 0 (and no part) if none."""
        size = self.partial_bytes
        if not size:
            return 0
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        same = (meta.get("size") == remote.size
                and meta.get("sha256", "") == remote.sha256
                and (remote.sha256 or meta.get("etag", "") == remote.etag))
        if not same or size > remote.size:
            self._discard_part()
            return 0
        return size

    def _check_space(self, remaining: int) -> None:
        try:
            free = int(self._disk_usage(self.dest.parent).free)
        except OSError:
            return  # unknown: the write itself reports a full disk
        if free < remaining + self.disk_reserve_bytes:
            raise NotEnoughSpace(
                f"Not enough disk space for {self.dest.name}: it needs "
                f"{format_size(remaining)} more and {format_size(free)} is free in "
                f"{self.dest.parent}.",
                hint=f"Free at least {format_size(remaining + self.disk_reserve_bytes - free)}"
                     " and try again; anything already downloaded is kept.",
            )

    def _write_meta(self, remote: RemoteFile) -> None:
        data = {"url": remote.url, "size": remote.size, "sha256": remote.sha256,
                "etag": remote.etag}
        try:
            self.meta_path.write_text(json.dumps(data), encoding="utf-8")
        except OSError as err:
            raise self._disk_error(err) from err

    def _hash_existing(self, checksum: _Checksum, total: int) -> Iterator[DownloadEvent]:
        """Feed the part's bytes to `checksum` (which must be empty), with progress."""
        size, last = self.partial_bytes, self._clock()
        try:
            with self.part_path.open("rb") as fh:
                while checksum.length < size:
                    block = fh.read(min(8 * self.chunk_bytes, size - checksum.length))
                    if not block:
                        break
                    checksum.update(block)
                    if self._stopping():
                        yield from self._stop_event(total)
                        return
                    now = self._clock()
                    if now - last >= self.progress_interval_s:
                        last = now
                        yield DownloadVerifying(checksum.length, total)
        except OSError as err:
            raise self._disk_error(err) from err
        if checksum.length != self.partial_bytes:  # the part changed under us: start over
            self._discard_part()
            checksum.reset()
        yield DownloadVerifying(checksum.length, total)

    def _stream(self, remote: RemoteFile, checksum: _Checksum) -> Iterator[DownloadEvent]:
        offset = self.partial_bytes
        if offset >= remote.size:
            return
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(remote.url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            err.close()
            if err.code == 416 and offset == remote.size:
                return
            if err.code >= 500 or err.code in (408, 429):
                raise _Interrupted(f"the server answered {err.code}") from err
            raise self._http_error(err.code) from err
        except (urllib.error.URLError, OSError) as err:
            if isinstance(err, urllib.error.URLError) and _is_offline(err.reason):
                raise self._network_error(err) from err
            raise _Interrupted(_reason(err)) from err
        with response:
            mode = "ab"
            if offset and response.status != 206:
                offset, mode = 0, "wb"  # the server ignored the range: start over
                checksum.reset()
            elif offset and not _content_range_starts_at(response.headers, offset):
                raise _Interrupted("the server sent a different part of the file")
            done = offset
            speed = _Speed()
            last = self._clock()
            speed.add(done, last)
            yield DownloadProgress(done, remote.size, 0.0, None)
            try:
                with self.part_path.open(mode) as fh:
                    while done < remote.size:
                        if self._stopping():
                            _sync(fh)
                            break
                        try:
                            data = response.read(min(self.chunk_bytes, remote.size - done))
                        except (OSError, http.client.HTTPException) as err:
                            raise _Interrupted(_reason(err)) from err
                        if not data:
                            raise _Interrupted("the connection was closed early")
                        try:
                            _write_chunk(fh, data)
                        except OSError as err:
                            raise self._disk_error(err) from err
                        checksum.update(data)
                        done += len(data)
                        now = self._clock()
                        if now - last >= self.progress_interval_s or done == remote.size:
                            last = now
                            rate = speed.add(done, now)
                            eta = (remote.size - done) / rate if rate > 0 else None
                            yield DownloadProgress(done, remote.size, rate, eta)
                    else:
                        _sync(fh)
            except OSError as err:  # closing / syncing the part
                raise self._disk_error(err) from err
        if self._stopping():
            yield from self._stop_event(remote.size)

    def _stopping(self) -> bool:
        return self._pause.is_set() or self._cancel.is_set()

    def _stop_event(self, total: int) -> Iterator[DownloadEvent]:
        if self._cancel.is_set():
            self._discard_part()
            yield DownloadCancelled()
        else:
            yield DownloadPaused(self.partial_bytes, total)

    def _wait_or_stop(self, seconds: float) -> bool:
        """Wait before a retry; True when pause or cancel was asked meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopping():
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return self._stopping()

    def _promote(self) -> None:
        try:
            os.replace(self.part_path, self.dest)
            _sync_dir(self.dest.parent)
        except OSError as err:
            raise self._disk_error(err) from err
        self.meta_path.unlink(missing_ok=True)

    def _discard_part(self) -> None:
        self.part_path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)

    # -- errors -------------------------------------------------------------------------------

    def _http_error(self, status: int) -> DownloadError:
        host = _host(self.url)
        if status == 404:
            return DownloadError(
                f"{self.dest.name} was not found on {host} (HTTP 404).",
                hint="The model may have been renamed or removed. Choose another model.")
        if status in (401, 403):
            return DownloadError(
                f"{host} refused the download of {self.dest.name} (HTTP {status}).",
                hint="The model may need you to accept its licence on its web page first. "
                     "Choose another model, or download it yourself and pick the file.")
        return DownloadError(f"{host} answered HTTP {status} for {self.dest.name}.",
                             hint="Try again later; anything already downloaded is kept.")

    def _network_error(self, err: BaseException) -> DownloadError:
        host = _host(self.url)
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        if isinstance(reason, socket.gaierror):
            text = f"Could not find {host}: this computer seems to be offline."
        elif isinstance(reason, ConnectionRefusedError):
            text = f"{host} refused the connection: the server may be down."
        elif isinstance(reason, TimeoutError | socket.timeout):
            text = f"{host} did not answer in time."
        else:
            text = f"Could not reach {host}: {_reason(err)}."
        return DownloadError(text, hint="Check the internet connection and try again; "
                                        "anything already downloaded is kept.")

    def _disk_error(self, err: OSError) -> DownloadError:
        if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return NotEnoughSpace(
                f"The disk became full while downloading {self.dest.name}.",
                hint="Free some space and start the download again: it continues where it "
                     "stopped.")
        return DownloadError(f"Could not write {self.part_path}: {err.strerror or err}.",
                             hint="Check that the data folder is writable.")


# --- helpers ----------------------------------------------------------------------------------

class _Checksum:
    """SHA-256 of the bytes so far, and how many there were."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._hash = sha256()
        self.length = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.length += len(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _Speed:
    """Bytes per second over the last few seconds."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, done: int, now: float) -> float:
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > _SPEED_WINDOW_S:
            self._samples.popleft()
        t0, d0 = self._samples[0]
        return (done - d0) / (now - t0) if now > t0 else 0.0


def _sha256_header(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"').lower()
    return value if len(value) == 64 and not value.strip("0123456789abcdef") else ""


def _content_range_starts_at(headers: Any, offset: int) -> bool:
    value = headers.get("Content-Range", "")  # "bytes 100-199/1000"
    try:
        unit, rest = value.split(" ", 1)
        return unit == "bytes" and int(rest.split("-", 1)[0]) == offset
    except ValueError:
        return False


def _is_offline(reason: Any) -> bool:
    return isinstance(reason, socket.gaierror | ConnectionRefusedError)


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.URLError):
        err = err.reason if isinstance(err.reason, BaseException) else err
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return str(text)


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def _sync(fh: BinaryIO) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def _sync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

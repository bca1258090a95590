"""The HTTP side of a model download: where Hugging Face serves a file, what the server says
about it (size and published SHA-256), the byte stream from where an earlier attempt stopped
(a range request), the download speed, and the network errors in words a person can act on.

Only the URL given is contacted, and only when one of these functions is called.
"""

from __future__ import annotations

import http.client
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass
from typing import Any

from ghostdesk.core.models.download_events import DownloadError

DEFAULT_ENDPOINT = "https://huggingface.co"
ENDPOINT_ENV = "HF_ENDPOINT"
"""The same variable huggingface_hub reads, so a mirror set for one is used by both."""
USER_AGENT = "GhostDesk-model-download/1"
_MAX_REDIRECTS = 6
_SPEED_WINDOW_S = 5.0


@dataclass(frozen=True)
class RemoteFile:
    url: str
    size: int
    sha256: str
    """The SHA-256 the server publishes for the file ("" when it publishes none)."""
    etag: str


class Interrupted(Exception):
    """The connection ended early or failed in a way worth retrying."""


# --- urls ---------------------------------------------------------------------------------

def hf_endpoint() -> str:
    return (os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")


def hf_resolve_url(repo_id: str, filename: str, revision: str = "main",
                   endpoint: str | None = None) -> str:
    """The Hugging Face download URL of one file in a model repository."""
    base = (endpoint or hf_endpoint()).rstrip("/")
    return (f"{base}/{repo_id}/resolve/{urllib.parse.quote(revision, safe='')}/"
            f"{urllib.parse.quote(filename)}")


# --- asking about the file ------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


def probe_remote(url: str, name: str, *, timeout: float) -> RemoteFile:
    """Ask the server for the file's size and published SHA-256 (a HEAD request; the
    redirects are followed by hand so Hugging Face's X-Linked-* headers are seen). `name`
    is the file's name in messages."""
    opener = urllib.request.build_opener(_NoRedirect())
    current, size, checksum, etag = url, -1, "", ""
    for _ in range(_MAX_REDIRECTS):
        request = urllib.request.Request(current, method="HEAD",
                                         headers={"User-Agent": USER_AGENT,
                                                  "Accept-Encoding": "identity"})
        try:
            response = opener.open(request, timeout=timeout)
            status, headers = response.status, response.headers
            response.close()
        except urllib.error.HTTPError as err:
            status, headers = err.code, err.headers
            err.close()
            if not 300 <= status < 400:
                raise http_error(url, name, status) from err
        except (urllib.error.URLError, OSError) as err:
            raise network_error(url, err) from err
        checksum = checksum or sha256_from_etag(headers.get("X-Linked-Etag", ""))
        if size < 0 and headers.get("X-Linked-Size", "").isdigit():
            size = int(headers["X-Linked-Size"])
        etag = etag or headers.get("X-Linked-Etag", "") or headers.get("ETag", "")
        if 300 <= status < 400:
            location = headers.get("Location")
            if not location:
                raise DownloadError(f"The server at {_host(current)} sent a redirect "
                                    "without a location.")
            if size >= 0:
                break  # Hugging Face: the size and checksum come with the redirect
            current = urllib.parse.urljoin(current, location)
            continue
        if size < 0 and headers.get("Content-Length", "").isdigit():
            size = int(headers["Content-Length"])
        checksum = checksum or sha256_from_etag(headers.get("ETag", ""))
        break
    else:
        raise DownloadError(f"The server at {_host(url)} redirected too many times.")
    if size <= 0:
        raise DownloadError(f"The server at {_host(url)} did not say how large "
                            f"{name} is, so it can't be downloaded safely.")
    return RemoteFile(url, size, checksum, etag.strip('"'))


def sha256_from_etag(value: str) -> str:
    """The SHA-256 in an ETag header ("" when the tag is something else)."""
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"').lower()
    return value if len(value) == 64 and not value.strip("0123456789abcdef") else ""


# --- getting the bytes ------------------------------------------------------------------------

def open_from(remote: RemoteFile, offset: int, name: str, *,
              timeout: float) -> tuple[Any, int] | None:
    """GET the file from byte `offset` on (a range request when it is past 0). Returns the
    open response and the byte its body starts at (0 when the server ignored the range), or
    None when the server says nothing is left. Raises Interrupted for a failure worth
    retrying, DownloadError for one that is not."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(remote.url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset == remote.size:
            return None
        if err.code >= 500 or err.code in (408, 429):
            raise Interrupted(f"the server answered {err.code}") from err
        raise http_error(remote.url, name, err.code) from err
    except (urllib.error.URLError, OSError) as err:
        if isinstance(err, urllib.error.URLError) and _is_offline(err.reason):
            raise network_error(remote.url, err) from err
        raise Interrupted(_reason(err)) from err
    if offset and response.status != 206:
        return response, 0  # the server ignored the range: it sends the whole file
    if offset and not _content_range_starts_at(response.headers, offset):
        response.close()
        raise Interrupted("the server sent a different part of the file")
    return response, offset


def read_chunk(response: Any, size: int) -> bytes:
    """Up to `size` bytes of the body; Interrupted when the connection fails or ends early."""
    try:
        data = response.read(size)
    except (OSError, http.client.HTTPException) as err:
        raise Interrupted(_reason(err)) from err
    if not data:
        raise Interrupted("the connection was closed early")
    return data


class TransferSpeed:
    """Bytes per second over the last few seconds."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, done: int, now: float) -> float:
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > _SPEED_WINDOW_S:
            self._samples.popleft()
        t0, d0 = self._samples[0]
        return (done - d0) / (now - t0) if now > t0 else 0.0


# --- errors -----------------------------------------------------------------------------------

def http_error(url: str, name: str, status: int) -> DownloadError:
    host = _host(url)
    if status == 404:
        return DownloadError(
            f"{name} was not found on {host} (HTTP 404).",
            hint="The model may have been renamed or removed. Choose another model.")
    if status in (401, 403):
        return DownloadError(
            f"{host} refused the download of {name} (HTTP {status}).",
            hint="The model may need you to accept its licence on its web page first. "
                 "Choose another model, or download it yourself and pick the file.")
    return DownloadError(f"{host} answered HTTP {status} for {name}.",
                         hint="Try again later; anything already downloaded is kept.")


def network_error(url: str, err: BaseException) -> DownloadError:
    host = _host(url)
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

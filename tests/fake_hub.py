"""A local stand-in for the Hugging Face file endpoint, for download tests (no network).

`GET|HEAD /<repo>/resolve/<rev>/<file>` answers like huggingface.co does for a large file: a
302 carrying X-Linked-Size and X-Linked-Etag (the SHA-256), to `/cdn/<file>`, which serves the
bytes with HTTP range support. Knobs let a test cut a connection, corrupt the bytes, ignore
ranges or answer 404/500.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


@dataclass
class HostedFile:
    data: bytes
    published_sha256: str = ""
    """What the server claims; defaults to the real checksum."""

    def __post_init__(self) -> None:
        self.published_sha256 = self.published_sha256 or hashlib.sha256(self.data).hexdigest()


@dataclass
class HubBehaviour:
    cut_after_bytes: int | None = None
    """Close the connection after sending this many body bytes of a GET..."""
    cuts_left: int = 0
    """...this many times."""
    ignore_range: bool = False
    status_override: int | None = None
    redirect: bool = True
    send_slowly_s: float = 0.0
    """Sleep between 16 KiB pieces (lets a test pause mid-download)."""


@dataclass
class RecordedRequest:
    method: str
    path: str
    range: str | None


@dataclass
class FakeHub:
    files: dict[str, HostedFile] = field(default_factory=dict)
    """Key: "<repo_id>/<filename>"."""
    behaviour: HubBehaviour = field(default_factory=HubBehaviour)
    requests: list[RecordedRequest] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def host(self, repo_id: str, filename: str, data: bytes, published_sha256: str = "") -> str:
        """Serve `data` as repo_id/filename; returns its resolve URL."""
        self.files[f"{repo_id}/{filename}"] = HostedFile(data, published_sha256)
        return f"{self.endpoint}/{repo_id}/resolve/main/{filename}"

    def gets(self) -> list[RecordedRequest]:
        """The GET requests that were answered with file bytes (not with a redirect)."""
        return [r for r in self.requests if r.method == "GET"
                and (r.path.startswith("/cdn/") or not self.behaviour.redirect)]

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                path = unquote(self.path)
                hub.requests.append(RecordedRequest(self.command, path, self.headers.get("Range")))
                b = hub.behaviour
                if b.status_override:
                    self.send_response(b.status_override)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if "/resolve/" in path:
                    repo, rest = path.lstrip("/").split("/resolve/", 1)
                    filename = rest.split("/", 1)[1]
                    hosted = hub.files.get(f"{repo}/{filename}")
                    if hosted is None:
                        self._not_found()
                        return
                    if b.redirect:
                        self.send_response(302)
                        self.send_header("Location", f"/cdn/{repo}/{filename}")
                        self.send_header("X-Linked-Size", str(len(hosted.data)))
                        self.send_header("X-Linked-Etag", f'"{hosted.published_sha256}"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self._serve(hosted, body, etag=True)
                    return
                if path.startswith("/cdn/"):
                    key = path[len("/cdn/"):]
                    hosted = hub.files.get(key)
                    if hosted is None:
                        self._not_found()
                        return
                    self._serve(hosted, body, etag=False)
                    return
                self._not_found()

            def _not_found(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _serve(self, hosted: HostedFile, body: bool, etag: bool) -> None:
                b = hub.behaviour
                data, start = hosted.data, 0
                wanted = self.headers.get("Range")
                if wanted and not b.ignore_range and body:
                    start = int(wanted.split("=", 1)[1].split("-", 1)[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                if etag:
                    self.send_header("ETag", f'"{hosted.published_sha256}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if not body:
                    return
                payload = data[start:]
                limit = len(payload)
                cut = b.cut_after_bytes is not None and b.cuts_left > 0
                if cut:
                    b.cuts_left -= 1
                    limit = min(limit, b.cut_after_bytes or 0)
                sent = 0
                while sent < limit:
                    piece = payload[sent:min(limit, sent + 16384)]
                    try:
                        self.wfile.write(piece)
                        self.wfile.flush()
                    except OSError:
                        return
                    sent += len(piece)
                    if b.send_slowly_s:
                        threading.Event().wait(b.send_slowly_s)
                if cut:
                    self.close_connection = True
                    self.connection.shutdown(2)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

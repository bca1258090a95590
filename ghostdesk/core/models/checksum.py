"""Verifying a downloaded model: the running SHA-256 of its bytes (continued over the part an
earlier attempt left), the checksum it must have, and the error when it doesn't."""

from __future__ import annotations

from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path

from ghostdesk.core.models.download_events import ChecksumMismatch, DownloadError


class RunningChecksum:
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

    def feed_file(self, path: Path, size: int, block_bytes: int) -> Iterator[int]:
        """Add the first `size` bytes of `path` (less if it is shorter), yielding the length
        after each block so the caller can report progress or stop."""
        with path.open("rb") as fh:
            while self.length < size:
                block = fh.read(min(block_bytes, size - self.length))
                if not block:
                    break
                self.update(block)
                yield self.length


def expected_checksum(name: str, catalogue_sha256: str, published_sha256: str) -> str:
    """The SHA-256 the finished file must have ("" when nobody says): the catalogue's, or
    else the one the server publishes. Raises DownloadError when the two disagree."""
    if catalogue_sha256 and published_sha256 and catalogue_sha256 != published_sha256:
        raise DownloadError(
            f"The file {name} on the server is not the one GhostDesk expects "
            f"(published SHA-256 {published_sha256}, expected {catalogue_sha256}).",
            hint="Nothing was downloaded. Choose another model or a file on disk.",
        )
    return catalogue_sha256 or published_sha256


def checksum_mismatch(name: str, digest: str, expected: str) -> ChecksumMismatch:
    """The error for a finished file whose checksum is wrong (its part is deleted first)."""
    return ChecksumMismatch(
        f"The downloaded file {name} is damaged: its SHA-256 is {digest}, "
        f"not {expected}. It was deleted.",
        hint="Try the download again. If it fails again, the file on the server may "
             "have changed; choose another model or a file on disk.",
    )

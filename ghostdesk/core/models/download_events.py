"""What a model download tells its caller: the events it yields while it runs and the errors
it raises when it can't go on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ghostdesk.core.errors import GhostDeskError


class DownloadError(GhostDeskError):
    """A download could not go on. What was downloaded so far is kept unless the message
    says otherwise."""


class ChecksumMismatch(DownloadError):
    """The finished file is not the expected one; the part was deleted."""


class NotEnoughSpace(DownloadError):
    """The disk is (or would become) too full."""


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

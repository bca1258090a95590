"""The disk side of a model download: the `<name>.part` file the bytes go to, the
`<name>.part.json` that says which remote file it is a part of, the free-space check before
a byte is written, and the atomic rename to `<name>` once the file is complete and verified,
so a file under the final name is always whole."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ghostdesk.core.models.catalogue import format_size
from ghostdesk.core.models.download_events import DownloadError, NotEnoughSpace

if TYPE_CHECKING:
    from ghostdesk.core.models.http_transfer import RemoteFile

PART_SUFFIX = ".part"
META_SUFFIX = ".part.json"
DISK_RESERVE_BYTES = 256 * 1024 * 1024
"""Left free on the disk after a download, so the database can still be written."""


class PartFile:
    """Where the bytes of `dest` wait until the download is complete."""

    def __init__(self, dest: Path, *, disk_reserve_bytes: int = DISK_RESERVE_BYTES,
                 disk_usage: Callable[[Path], Any] = shutil.disk_usage) -> None:
        self.dest = dest
        self.path = dest.with_name(dest.name + PART_SUFFIX)
        self.meta_path = dest.with_name(dest.name + META_SUFFIX)
        self.disk_reserve_bytes = disk_reserve_bytes
        self._disk_usage = disk_usage

    @property
    def size(self) -> int:
        """Bytes already in the part (0 when there is none)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def ensure_folder(self) -> None:
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DownloadError(f"Could not create the folder {self.dest.parent}: "
                                f"{err.strerror or err}.") from err

    def reusable_bytes(self, remote: RemoteFile) -> int:
        """Bytes of an earlier part that belong to this same file; 0 (and no part) if none."""
        size = self.size
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
            self.discard()
            return 0
        return size

    def check_space(self, remaining: int) -> None:
        """NotEnoughSpace unless `remaining` bytes fit with the reserve left over."""
        free = free_bytes(self.dest.parent, self._disk_usage)
        if free is None:
            return  # unknown: the write itself reports a full disk
        if free < remaining + self.disk_reserve_bytes:
            raise NotEnoughSpace(
                f"Not enough disk space for {self.dest.name}: it needs "
                f"{format_size(remaining)} more and {format_size(free)} is free in "
                f"{self.dest.parent}.",
                hint=f"Free at least {format_size(remaining + self.disk_reserve_bytes - free)}"
                     " and try again; anything already downloaded is kept.",
            )

    def write_meta(self, remote: RemoteFile) -> None:
        data = {"url": remote.url, "size": remote.size, "sha256": remote.sha256,
                "etag": remote.etag}
        try:
            self.meta_path.write_text(json.dumps(data), encoding="utf-8")
        except OSError as err:
            raise self.disk_error(err) from err

    def promote(self) -> None:
        """Give the complete part its final name (atomically, and synced)."""
        try:
            os.replace(self.path, self.dest)
            _sync_dir(self.dest.parent)
        except OSError as err:
            raise self.disk_error(err) from err
        self.meta_path.unlink(missing_ok=True)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)

    def disk_error(self, err: OSError) -> DownloadError:
        if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return NotEnoughSpace(
                f"The disk became full while downloading {self.dest.name}.",
                hint="Free some space and start the download again: it continues where it "
                     "stopped.")
        return DownloadError(f"Could not write {self.path}: {err.strerror or err}.",
                             hint="Check that the data folder is writable.")


def free_bytes(folder: Path,
               disk_usage: Callable[[Path], Any] = shutil.disk_usage) -> int | None:
    """Free bytes on the disk that holds `folder` (or would hold it: the nearest folder above
    that exists is asked); None when the system can't say."""
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        return int(disk_usage(probe).free)
    except OSError:
        return None


def write_chunk(fh: BinaryIO, data: bytes) -> None:
    """One write into the part (a function of its own so a test can make the disk fill)."""
    fh.write(data)


def sync(fh: BinaryIO) -> None:
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

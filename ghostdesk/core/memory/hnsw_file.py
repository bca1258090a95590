"""Checking an hnswlib index file byte by byte, without hnswlib, before hnswlib may load it.

hnswlib parses its file in native code without bounds checks (a crafted file can overflow the
heap, nmslib/hnswlib#673), so a file reaches `load_index` only after `check_hnsw_file` has
checked every offset, count and neighbour id in it against the layout below.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# hnswlib's saveIndex header: offsetLevel0, max_elements, cur_element_count,
# size_data_per_element, label_offset, offsetData (size_t), maxlevel (int),
# enterpoint_node (uint32), maxM, maxM0, M (size_t), mult (double), ef_construction (size_t).
HEADER = struct.Struct("<QQQQQQiIQQQdQ")
_DELETE_MARK = 0x01


class IndexFileError(Exception):
    """The index file is not one this code would have written (damaged or crafted)."""


@dataclass(frozen=True)
class HnswFileInfo:
    elements: int
    labels: np.ndarray
    deleted: np.ndarray
    """Boolean mask over `labels`."""

    @property
    def live_labels(self) -> np.ndarray:
        return self.labels[~self.deleted]


def check_hnsw_file(path: Path, dim: int, M: int) -> HnswFileInfo:
    """Check that `path` is a well-formed hnswlib (0.8) float index of `dim` and `M`.

    Reads it without hnswlib: every size and offset in the header, every neighbour count and
    id on every level, the entry point and the exact file length. Raises IndexFileError on the
    first thing that is off. Memory-mapped, so a large file costs no large allocation.
    """
    size = path.stat().st_size
    if size < HEADER.size:
        raise IndexFileError(f"file is {size} bytes, shorter than the header")
    with open(path, "rb") as fh:
        header = HEADER.unpack(fh.read(HEADER.size))
    (offset_level0, max_elements, count, per_element, label_offset, offset_data, max_level,
     entry_point, max_m, max_m0, m, mult, ef_construction) = header
    links0 = max_m0 * 4 + 4
    expected = {
        "offsetLevel0": (offset_level0, 0),
        "M": (m, M),
        "maxM": (max_m, M),
        "maxM0": (max_m0, 2 * M),
        "offsetData": (offset_data, 2 * M * 4 + 4),
        "label_offset": (label_offset, 2 * M * 4 + 4 + dim * 4),
        "size_data_per_element": (per_element, 2 * M * 4 + 4 + dim * 4 + 8),
    }
    for name, (got, want) in expected.items():
        if got != want:
            raise IndexFileError(f"{name} is {got}, expected {want}")
    if not (count <= max_elements <= max(count, 1) * 64 + 1_000_000):
        raise IndexFileError(f"max_elements {max_elements} does not fit {count} elements")
    if not (math.isfinite(mult) and 0 < mult < 10) or not 1 <= ef_construction <= 1_000_000:
        raise IndexFileError("construction parameters out of range")
    level0_bytes = count * per_element
    if size < HEADER.size + level0_bytes + 4 * count:
        raise IndexFileError(f"file is truncated ({size} bytes for {count} elements)")
    if count == 0:
        if size != HEADER.size:
            raise IndexFileError("an empty index with trailing bytes")
        return HnswFileInfo(0, np.zeros(0, np.int64), np.zeros(0, bool))

    raw = np.memmap(path, dtype=np.uint8, mode="r")
    level0 = raw[HEADER.size:HEADER.size + level0_bytes].reshape(count, per_element)
    labels = np.empty(count, dtype=np.int64)
    deleted = np.empty(count, dtype=bool)
    rows = 65_536  # checked in slices: a copy of the whole level 0 could be gigabytes
    for first in range(0, count, rows):
        part = np.ascontiguousarray(level0[first:first + rows])
        counts = part[:, 0:2].copy().view("<u2").ravel()
        flags, spare = part[:, 2], part[:, 3]
        if counts.max(initial=0) > max_m0:
            raise IndexFileError("a level-0 neighbour list is longer than maxM0")
        if np.any(flags & ~np.uint8(_DELETE_MARK)) or np.any(spare):
            raise IndexFileError("unknown flags in a level-0 list header")
        neighbours = part[:, 4:links0].copy().view("<u4")
        used = np.arange(max_m0)[None, :] < counts[:, None]
        if np.any(neighbours[used] >= count):
            raise IndexFileError("a level-0 neighbour id points outside the index")
        if not np.all(np.isfinite(part[:, offset_data:label_offset].copy().view("<f4"))):
            raise IndexFileError("a vector holds NaN or infinity")
        part_labels = part[:, label_offset:per_element].copy().view("<u8").ravel()
        if part_labels.max(initial=0) >= 2**62:
            raise IndexFileError("a label is out of range")
        labels[first:first + rows] = part_labels.astype(np.int64)
        deleted[first:first + rows] = (flags & _DELETE_MARK).astype(bool)
    if np.unique(labels).shape[0] != count:
        raise IndexFileError("two elements share a label")

    # Upper levels: per element a uint32 byte count, then that many bytes of link lists.
    per_level = max_m * 4 + 4
    tail = bytes(raw[HEADER.size + level0_bytes:])  # small: ~4 bytes per element + links
    del raw, level0
    pos, top, levels_of_entry = 0, 0, -1
    tail_len = len(tail)
    read_u32 = struct.Struct("<I").unpack_from
    for element in range(count):
        if pos + 4 > tail_len:
            raise IndexFileError("file is truncated inside the upper levels")
        (nbytes,) = read_u32(tail, pos)
        pos += 4
        levels = 0
        if nbytes:
            if nbytes % per_level or pos + nbytes > tail_len:
                raise IndexFileError("an upper-level link list has a bad size")
            levels = nbytes // per_level
            block = np.frombuffer(tail, "<u4", nbytes // 4, pos).reshape(levels, max_m + 1)
            if np.any(block[:, 0] > max_m):
                raise IndexFileError("an upper-level neighbour list is longer than maxM")
            used = np.arange(max_m)[None, :] < block[:, :1]
            if np.any(block[:, 1:][used] >= count):
                raise IndexFileError("an upper-level neighbour id points outside the index")
            top = max(top, levels)
            pos += nbytes
        if element == entry_point:
            levels_of_entry = levels
    if pos != tail_len:
        raise IndexFileError("trailing bytes after the last element")
    if entry_point >= count or max_level != top or levels_of_entry != max_level:
        raise IndexFileError("the entry point or top level is inconsistent")
    return HnswFileInfo(count, labels, deleted)

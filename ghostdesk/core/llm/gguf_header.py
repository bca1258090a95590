"""The raw header of a GGUF file, parsed with `struct` over a memory map: the key/value
metadata and the tensor table.

Why not `gguf.GGUFReader`: it builds a numpy view for every vocabulary string, which takes
~20 s for a 262k-token vocabulary, while skipping those strings takes a fraction of a second.
Long string arrays (the vocabulary, merges) are left in the file and only remembered by
position (`StringArray`); `string_at` and `has_token` look into them when needed. The
`gguf` package still supplies the format's constants (tensor types, block sizes).

Every bound is checked against the file size, so a truncated or hostile file raises
HeaderDamaged (or ModelFileError), never a crash or a huge allocation.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ghostdesk.core.errors import ModelFileError

# GGUF value type ids (gguf.GGUFValueType) -> struct code, for the fixed-size ones.
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?",
           10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
# Arrays up to this length are decoded (per-layer head counts, tags); longer ones (the
# vocabulary, scores, merges) are only skipped over and remembered by position.
_DECODE_ARRAY_MAX = 4096
_MAX_DIMS = 8


class HeaderDamaged(Exception):
    """The header is malformed or ends early; read_model_info turns it into a ModelFileError
    with the file's name."""


class TensorEntry(NamedTuple):
    name: str
    type: int
    """A gguf.GGMLQuantizationType value."""
    n_elements: int
    n_bytes: int
    offset: int
    """From the start of the data section."""


@dataclass(frozen=True)
class GgufHeader:
    version: int
    endian: str
    """The struct byte order of the file: "<" or ">"."""
    metadata: dict[str, Any]
    """Every scalar or short-array value, by key."""
    string_arrays: dict[str, StringArray]
    """The long string arrays, by key, left in the file."""
    tensors: list[TensorEntry]


def damaged_error(p: Path, detail: str) -> ModelFileError:
    return ModelFileError(f"{p.name} looks truncated or damaged: {detail}. Download it again.",
                          hint=f"File: {p}")


@dataclass(frozen=True)
class StringArray:
    """A long array of strings left in the file, found again by position when needed."""

    start: int
    end: int
    count: int


class _Cursor:
    """Reads GGUF values from `buf`, checking every length against the file size."""

    def __init__(self, buf: mmap.mmap, size: int, endian: str) -> None:
        self.buf, self.size, self.e, self.pos = buf, size, endian, 0

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise HeaderDamaged(f"needs {n} bytes at offset {self.pos}, file has {self.size}")

    def scalar(self, code: str) -> Any:
        fmt = self.e + code
        n = struct.calcsize(fmt)
        self.need(n)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value

    def raw_string(self) -> bytes:
        n = self.scalar("Q")
        self.need(n)
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def string(self) -> str:
        return self.raw_string().decode("utf-8", errors="replace")

    def value(self, vtype: int, depth: int = 0) -> Any:
        if vtype in _SCALAR:
            return self.scalar(_SCALAR[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype != _ARRAY or depth > 2:
            raise HeaderDamaged(f"unknown value type {vtype}")
        itype, count = self.scalar("I"), self.scalar("Q")
        if itype in _SCALAR:
            width = struct.calcsize(_SCALAR[itype])
            self.need(count * width)
            if count <= _DECODE_ARRAY_MAX:
                fmt = f"{self.e}{count}{_SCALAR[itype]}"
                out = list(struct.unpack_from(fmt, self.buf, self.pos))
            else:
                out = None  # long numeric arrays (scores, token types) are never needed
            self.pos += count * width
            return out
        if itype == _STRING:
            self.need(count * 8)  # each string has at least its 8-byte length
            start = self.pos
            if count <= _DECODE_ARRAY_MAX:
                return [self.string() for _ in range(count)]
            unpack, fmt, size = struct.unpack_from, self.e + "Q", self.size
            pos, buf = self.pos, self.buf
            for _ in range(count):
                (n,) = unpack(fmt, buf, pos)
                pos += 8 + n
                if pos > size:
                    raise HeaderDamaged("a string array runs past the end of the file")
            self.pos = pos
            return StringArray(start, pos, count)
        self.need(count * 12)  # an array of arrays: each has at least a type and a count
        return [self.value(itype, depth + 1) for _ in range(count)]


def string_at(buf: mmap.mmap, arr: StringArray, index: int, endian: str) -> str:
    """The `index`-th string of a long string array left in the file ("" when out of range)."""
    if not 0 <= index < arr.count:
        return ""
    pos, fmt = arr.start, endian + "Q"
    for _ in range(index):
        pos += 8 + struct.unpack_from(fmt, buf, pos)[0]
    (n,) = struct.unpack_from(fmt, buf, pos)
    return buf[pos + 8:pos + 8 + n].decode("utf-8", errors="replace")


def has_token(buf: mmap.mmap, arr: StringArray, text: str, endian: str) -> bool:
    """Whether `text` is one whole string of a long string array (e.g. a vocabulary token)."""
    # A whole-token match is the string's length followed by its bytes; a byte search over
    # the array finds it without decoding 100k+ strings. A false hit would need those exact
    # 8 length bytes inside another token, which token texts do not contain.
    raw = text.encode()
    return buf.find(struct.pack(endian + "Q", len(raw)) + raw, arr.start, arr.end) != -1


def parse_header(p: Path, buf: mmap.mmap, size: int) -> GgufHeader:
    """Parse the header of the GGUF file `p` held in `buf` (`size` bytes). Raises
    HeaderDamaged (or struct.error and the like) for a malformed header, ModelFileError for a
    version or tensor type GhostDesk can't read, or a file shorter than its tensors need."""
    import gguf

    if size < 24:
        raise HeaderDamaged(f"the header needs at least 24 bytes, the file has {size}")
    (version_le,) = struct.unpack_from("<I", buf, 4)
    # A big-endian file's version reads as a huge number little-endian (same test as GGUFReader).
    endian = ">" if version_le & 0xFFFF == 0 else "<"
    cur = _Cursor(buf, size, endian)
    cur.pos = 4
    version = cur.scalar("I")
    if version < 2:
        raise ModelFileError(f"{p.name} uses GGUF version {version}, which is too old.",
                             hint="Download a current .gguf conversion of the model.")
    if version > 3:
        raise ModelFileError(f"{p.name} uses GGUF version {version}, which is newer than "
                             "this version of GhostDesk understands.", hint=f"File: {p}")
    n_tensors, n_kv = cur.scalar("Q"), cur.scalar("Q")
    # Each key/value needs >= 8+4 bytes and each tensor >= 8+4+4+8 bytes: bounds from size.
    if n_kv * 12 > size or n_tensors * 24 > size:
        raise HeaderDamaged(f"it claims {n_kv} header values and {n_tensors} tensors")

    meta: dict[str, Any] = {}
    arrays: dict[str, StringArray] = {}
    for _ in range(n_kv):
        key = cur.string()
        value = cur.value(cur.scalar("I"))
        if isinstance(value, StringArray):
            arrays[key] = value
        elif value is not None:
            meta[key] = value

    sizes = gguf.GGML_QUANT_SIZES
    tensors: list[TensorEntry] = []
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.scalar("I")
        if n_dims > _MAX_DIMS:
            raise HeaderDamaged(f"tensor {name!r} claims {n_dims} dimensions")
        n_elem = 1
        for _ in range(n_dims):
            n_elem *= cur.scalar("Q")
        ttype, offset = cur.scalar("I"), cur.scalar("Q")
        try:
            block, type_size = sizes[gguf.GGMLQuantizationType(ttype)]
        except (ValueError, KeyError) as err:
            raise ModelFileError(
                f"{p.name} uses a tensor type (id {ttype}) that this version of GhostDesk "
                "does not know.", hint="Try a more common quantization such as Q4_K_M.",
            ) from err
        if n_elem % block:
            raise HeaderDamaged(f"tensor {name!r} has {n_elem} values, not a multiple of {block}")
        tensors.append(TensorEntry(name, ttype, n_elem, n_elem // block * type_size, offset))

    alignment = meta.get("general.alignment", gguf.GGUF_DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise HeaderDamaged(f"general.alignment is {alignment!r}")
    data_start = -(-cur.pos // alignment) * alignment
    expected = max((data_start + t.offset + t.n_bytes for t in tensors), default=cur.pos)
    if expected > size:
        raise damaged_error(p, f"expected {expected} bytes, file has {size}")
    return GgufHeader(version, endian, meta, arrays, tensors)

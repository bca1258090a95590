"""Reads what a GGUF model file is (architecture, size, layers, chat template) without loading it.

The header is parsed here with `struct` over a memory map instead of `gguf.GGUFReader`: the
reader builds a numpy view for every vocabulary string, which takes ~20 s for a 262k-token
vocabulary, while skipping those strings takes a fraction of a second. The `gguf` package
still supplies the format's constants (tensor types, block sizes, file types).

Every bound is checked against the file size, so a truncated or hostile file gives a
ModelFileError with a message a person can act on, never a crash or a huge allocation.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import ModelFileError

GGUF_MAGIC = b"GGUF"
MIB = 1024 * 1024

# GGUF value type ids (gguf.GGUFValueType) -> struct code, for the fixed-size ones.
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?",
           10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
# Arrays up to this length are decoded (per-layer head counts, tags); longer ones (the
# vocabulary, scores, merges) are only skipped over and remembered by position.
_DECODE_ARRAY_MAX = 4096
_MAX_DIMS = 8
# Vocabulary entries whose presence tells which turn format a model was trained with.
VOCAB_MARKERS = (
    "<start_of_turn>", "<end_of_turn>", "<|start_header_id|>", "<|eot_id|>",
    "<|im_start|>", "<|im_end|>", "[INST]", "<|end|>",
)
_LAYER_RE = re.compile(r"^blk\.(\d+)\.")


class _Damaged(Exception):
    """Raised inside the parser; turned into a ModelFileError with the file's name."""


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a GGUF model read from its header. Sizes are in bytes."""

    path: Path
    file_size: int
    gguf_version: int
    architecture: str
    name: str
    parameter_count: int
    quantization: str
    context_length: int
    n_layers: int
    embedding_length: int
    head_count: tuple[int, ...]
    """Attention heads per layer (GGUF may store one number or one per layer)."""
    head_count_kv: tuple[int, ...]
    key_length: int
    value_length: int
    chat_template: str | None
    bos_token_id: int | None
    eos_token_id: int | None
    bos_text: str
    eos_text: str
    add_bos_token: bool
    vocab_size: int
    tokenizer_model: str
    vocab_markers: frozenset[str]
    """Which of VOCAB_MARKERS are whole tokens in the vocabulary."""
    layer_bytes: tuple[int, ...]
    """Bytes of the `blk.N.*` tensors for each layer N."""
    non_layer_bytes: int
    """token_embd, output, output_norm and anything else outside the repeating blocks."""
    output_bytes: int
    """What llama.cpp puts on the GPU as the output layer (output.weight, or the tied
    token embedding when the model has none, plus output_norm)."""
    tensor_count: int
    metadata: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """Every scalar or short-array header value, by key."""

    @property
    def has_chat_template(self) -> bool:
        return bool(self.chat_template)

    @property
    def kv_bytes_per_token_layer(self) -> tuple[int, ...]:
        """KV cache bytes one token costs in each layer (f16 keys and values)."""
        return tuple(h * (self.key_length + self.value_length) * 2 for h in self.head_count_kv)

    @property
    def display_name(self) -> str:
        return self.name or self.path.stem

    def summary(self) -> str:
        """One line for people, e.g. "Gemma 3 270m · gemma3 · 268M params · Q4_K_M · ctx 32768
        · 241 MiB"."""
        parts = [self.display_name, self.architecture or "unknown architecture"]
        parts.append(f"{format_count(self.parameter_count)} params")
        if self.quantization:
            parts.append(self.quantization)
        if self.context_length:
            parts.append(f"ctx {self.context_length}")
        parts.append(f"{self.file_size // MIB} MiB")
        return " · ".join(parts)


def format_count(n: int) -> str:
    """268098176 -> "268M", 7241732096 -> "7.2B"."""
    if n >= 1_000_000_000:
        return f"{n / 1e9:.1f}B".replace(".0B", "B")
    if n >= 1_000_000:
        return f"{round(n / 1e6)}M"
    if n >= 1_000:
        return f"{round(n / 1e3)}K"
    return str(n)


def read_model_info(path: str | Path) -> ModelInfo:
    """Read a GGUF file's header and tensor table. Raises ModelFileError for a missing,
    empty, non-GGUF, truncated or damaged file."""
    p = Path(path).expanduser()
    check_file(p)
    size = p.stat().st_size
    try:
        with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _parse(p, mm, size)
    except ModelFileError:
        raise
    except OSError as err:
        raise ModelFileError(f"Could not read the model file {p.name}: {err.strerror or err}.",
                             hint=f"File: {p}") from err
    except (_Damaged, struct.error, ValueError, IndexError, OverflowError, MemoryError,
            UnicodeError) as err:
        raise damaged_error(p, f"its header is malformed or ends early ({err})") from err


def check_file(p: Path) -> None:
    """The cheap checks: exists, is a file, not empty, starts with the GGUF magic."""
    if not p.exists():
        raise ModelFileError(f"Model file not found: {p}",
                             hint="Choose another model file in Settings, or leave the "
                                  "path empty to use the bundled model.")
    if p.is_dir():
        raise ModelFileError(f"{p} is a folder, not a model file.",
                             hint="Choose the .gguf file inside it.")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError as err:
        raise ModelFileError(f"Could not read the model file {p.name}: {err.strerror or err}.",
                             hint=f"File: {p}") from err
    if size == 0:
        raise ModelFileError(f"The model file {p.name} is empty.",
                             hint=f"Download it again. File: {p}")
    if head[:4] != GGUF_MAGIC:
        raise ModelFileError(
            f"{p.name} is not a GGUF model file (it starts with {head[:8]!r}{_guess(head)}). "
            "GhostDesk runs .gguf files.",
            hint=f"File: {p}")


def damaged_error(p: Path, detail: str) -> ModelFileError:
    return ModelFileError(f"{p.name} looks truncated or damaged: {detail}. Download it again.",
                          hint=f"File: {p}")


def _guess(head: bytes) -> str:
    """A hint about what the file is instead, for the common mix-ups."""
    low = head.lstrip().lower()
    if low.startswith((b"<!doctype", b"<html", b"<?xml")):
        return "; it looks like a web page, not the model"
    if head.startswith(b"PK\x03\x04"):
        return "; it looks like a ZIP archive or PyTorch checkpoint"
    if len(head) >= 9 and head[8:9] == b"{":
        return "; it looks like a safetensors file, which needs converting to GGUF"
    if head.startswith(b"ggml") or head.startswith(b"ggjt") or head.startswith(b"ggmf"):
        return "; it is an old GGML file, which needs converting to GGUF"
    return ""


@dataclass(frozen=True)
class _StringArray:
    """A long array of strings left in the file, found again by position when needed."""

    start: int
    end: int
    count: int


class _Cursor:
    def __init__(self, buf: mmap.mmap, size: int, endian: str) -> None:
        self.buf, self.size, self.e, self.pos = buf, size, endian, 0

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _Damaged(f"needs {n} bytes at offset {self.pos}, file has {self.size}")

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
            raise _Damaged(f"unknown value type {vtype}")
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
                    raise _Damaged("a string array runs past the end of the file")
            self.pos = pos
            return _StringArray(start, pos, count)
        self.need(count * 12)  # an array of arrays: each has at least a type and a count
        return [self.value(itype, depth + 1) for _ in range(count)]


def _string_at(buf: mmap.mmap, arr: _StringArray, index: int, endian: str) -> str:
    if not 0 <= index < arr.count:
        return ""
    pos, fmt = arr.start, endian + "Q"
    for _ in range(index):
        pos += 8 + struct.unpack_from(fmt, buf, pos)[0]
    (n,) = struct.unpack_from(fmt, buf, pos)
    return buf[pos + 8:pos + 8 + n].decode("utf-8", errors="replace")


def _has_token(buf: mmap.mmap, arr: _StringArray, text: str, endian: str) -> bool:
    # A whole-token match is the string's length followed by its bytes; a byte search over
    # the array finds it without decoding 100k+ strings. A false hit would need those exact
    # 8 length bytes inside another token, which token texts do not contain.
    raw = text.encode()
    return buf.find(struct.pack(endian + "Q", len(raw)) + raw, arr.start, arr.end) != -1


def _parse(p: Path, buf: mmap.mmap, size: int) -> ModelInfo:
    import gguf

    if size < 24:
        raise _Damaged(f"the header needs at least 24 bytes, the file has {size}")
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
        raise _Damaged(f"it claims {n_kv} header values and {n_tensors} tensors")

    meta: dict[str, Any] = {}
    arrays: dict[str, _StringArray] = {}
    for _ in range(n_kv):
        key = cur.string()
        value = cur.value(cur.scalar("I"))
        if isinstance(value, _StringArray):
            arrays[key] = value
        elif value is not None:
            meta[key] = value

    sizes = gguf.GGML_QUANT_SIZES
    tensors: list[tuple[str, int, int, int, int]] = []  # name, type, n_elements, n_bytes, off
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.scalar("I")
        if n_dims > _MAX_DIMS:
            raise _Damaged(f"tensor {name!r} claims {n_dims} dimensions")
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
            raise _Damaged(f"tensor {name!r} has {n_elem} values, not a multiple of {block}")
        tensors.append((name, ttype, n_elem, n_elem // block * type_size, offset))

    alignment = meta.get("general.alignment", gguf.GGUF_DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise _Damaged(f"general.alignment is {alignment!r}")
    data_start = -(-cur.pos // alignment) * alignment
    expected = max((data_start + off + nb for *_, nb, off in tensors), default=cur.pos)
    if expected > size:
        raise damaged_error(p, f"expected {expected} bytes, file has {size}")

    arch = str(meta.get("general.architecture", ""))
    n_layers = _int(meta.get(f"{arch}.block_count"))
    emb = _int(meta.get(f"{arch}.embedding_length"))
    heads = _per_layer(meta.get(f"{arch}.attention.head_count"), n_layers)
    heads_kv = _per_layer(meta.get(f"{arch}.attention.head_count_kv"), n_layers) or heads
    max_heads = max(heads, default=0)
    key_len = _int(meta.get(f"{arch}.attention.key_length")) or (emb // max_heads if max_heads
                                                                 else 0)
    value_len = _int(meta.get(f"{arch}.attention.value_length")) or key_len

    layer_bytes = [0] * n_layers
    by_name: dict[str, int] = {}
    type_bytes: Counter[int] = Counter()
    non_layer = 0
    for name, ttype, _n, nbytes, _off in tensors:
        by_name[name] = nbytes
        type_bytes[ttype] += nbytes
        m = _LAYER_RE.match(name)
        if m and int(m.group(1)) < n_layers:
            layer_bytes[int(m.group(1))] += nbytes
        else:
            non_layer += nbytes
    output_bytes = (by_name.get("output.weight", by_name.get("token_embd.weight", 0))
                    + by_name.get("output.bias", 0) + by_name.get("output_norm.weight", 0)
                    + by_name.get("output_norm.bias", 0))

    tokens = arrays.get("tokenizer.ggml.tokens")
    bos_id = _opt_int(meta.get("tokenizer.ggml.bos_token_id"))
    eos_id = _opt_int(meta.get("tokenizer.ggml.eos_token_id"))
    small_tokens = meta.get("tokenizer.ggml.tokens")
    if tokens is not None:
        vocab_size = tokens.count
        bos_text = _string_at(buf, tokens, bos_id, endian) if bos_id is not None else ""
        eos_text = _string_at(buf, tokens, eos_id, endian) if eos_id is not None else ""
        markers = frozenset(t for t in VOCAB_MARKERS if _has_token(buf, tokens, t, endian))
    else:  # tiny test vocabularies are decoded in full
        toks = small_tokens if isinstance(small_tokens, list) else []
        vocab_size = len(toks)
        bos_text = toks[bos_id] if bos_id is not None and 0 <= bos_id < len(toks) else ""
        eos_text = toks[eos_id] if eos_id is not None and 0 <= eos_id < len(toks) else ""
        markers = frozenset(t for t in VOCAB_MARKERS if t in toks)
    tok_model = str(meta.get("tokenizer.ggml.model", ""))
    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    if not isinstance(add_bos, bool):
        # llama.cpp's default when the key is absent: SentencePiece vocabularies add BOS.
        add_bos = tok_model == "llama"
    template = meta.get("tokenizer.chat_template")

    return ModelInfo(
        path=p, file_size=size, gguf_version=version, architecture=arch,
        name=str(meta.get("general.name", "")),
        parameter_count=sum(t[2] for t in tensors),
        quantization=_quant_name(gguf, meta.get("general.file_type"), type_bytes),
        context_length=_int(meta.get(f"{arch}.context_length")),
        n_layers=n_layers, embedding_length=emb, head_count=tuple(heads),
        head_count_kv=tuple(heads_kv), key_length=key_len, value_length=value_len,
        chat_template=template if isinstance(template, str) and template.strip() else None,
        bos_token_id=bos_id, eos_token_id=eos_id, bos_text=bos_text, eos_text=eos_text,
        add_bos_token=add_bos, vocab_size=vocab_size, tokenizer_model=tok_model,
        vocab_markers=markers, layer_bytes=tuple(layer_bytes), non_layer_bytes=non_layer,
        output_bytes=output_bytes, tensor_count=len(tensors), metadata=meta,
    )


def _int(value: Any) -> int:
    if isinstance(value, list):
        value = max(value, default=0)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _per_layer(value: Any, n_layers: int) -> list[int]:
    if isinstance(value, list):
        vals = [int(v) for v in value[:n_layers]]
        return vals + [vals[-1] if vals else 0] * (n_layers - len(vals))
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * n_layers
    return []


def _quant_name(gguf: Any, file_type: Any, type_bytes: Counter[int]) -> str:
    if isinstance(file_type, int):
        try:
            name = gguf.LlamaFileType(file_type).name
        except ValueError:
            name = ""
        if name and name != "GUESSED":
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
    if not type_bytes:
        return ""
    # No usable file type: name the tensor type holding the most bytes.
    ttype = type_bytes.most_common(1)[0][0]
    return gguf.GGMLQuantizationType(ttype).name

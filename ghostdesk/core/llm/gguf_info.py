"""Reads what a GGUF model file is (architecture, size, layers, chat template) without loading it.

The raw header (key/values and tensor table) is parsed by `gguf_header`, fast and
bounds-checked; this module turns it into a `ModelInfo` (layers, per-layer sizes, KV cache
per token, vocabulary facts) and checks the cheap things first (missing, empty, not GGUF).

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
from ghostdesk.core.llm.gguf_header import (
    GgufHeader,
    HeaderDamaged,
    damaged_error,
    has_token,
    parse_header,
    string_at,
)

GGUF_MAGIC = b"GGUF"
MIB = 1024 * 1024

# Vocabulary entries whose presence tells which turn format a model was trained with.
VOCAB_MARKERS = (
    "<start_of_turn>", "<end_of_turn>", "<|start_header_id|>", "<|eot_id|>",
    "<|im_start|>", "<|im_end|>", "[INST]", "<|end|>",
)
_LAYER_RE = re.compile(r"^blk\.(\d+)\.")


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
            return _model_info(p, parse_header(p, mm, size), mm, size)
    except ModelFileError:
        raise
    except OSError as err:
        raise ModelFileError(f"Could not read the model file {p.name}: {err.strerror or err}.",
                             hint=f"File: {p}") from err
    except (HeaderDamaged, struct.error, ValueError, IndexError, OverflowError, MemoryError,
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


def _model_info(p: Path, header: GgufHeader, buf: mmap.mmap, size: int) -> ModelInfo:
    """What the header says, in the terms GhostDesk uses (layers, KV cache, vocabulary)."""
    import gguf

    meta, arrays, tensors, endian = (header.metadata, header.string_arrays, header.tensors,
                                     header.endian)
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
        bos_text = string_at(buf, tokens, bos_id, endian) if bos_id is not None else ""
        eos_text = string_at(buf, tokens, eos_id, endian) if eos_id is not None else ""
        markers = frozenset(t for t in VOCAB_MARKERS if has_token(buf, tokens, t, endian))
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
        path=p, file_size=size, gguf_version=header.version, architecture=arch,
        name=str(meta.get("general.name", "")),
        parameter_count=sum(t.n_elements for t in tensors),
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

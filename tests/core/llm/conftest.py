"""Shared fixtures for the model tests: the bundled GGUF, damaged copies, tiny hand-made GGUFs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from ghostdesk.core.llm.bundled import bundled_model_path


@pytest.fixture(scope="session")
def model_path() -> Path:
    return bundled_model_path()


@pytest.fixture(scope="session")
def truncated_models(model_path: Path, tmp_path_factory: pytest.TempPathFactory,
                     ) -> dict[str, Path]:
    """Copies of the real model cut after 1 MiB (inside the vocabulary) and at 90%
    (inside the tensor data)."""
    folder = tmp_path_factory.mktemp("truncated")
    size = model_path.stat().st_size
    out = {}
    for label, length in (("1mib", 1024 * 1024), ("90pct", size * 9 // 10)):
        dest = folder / f"cut-{label}.gguf"
        with open(model_path, "rb") as src, open(dest, "wb") as dst:
            remaining = length
            while remaining:
                block = src.read(min(remaining, 8 * 1024 * 1024))
                dst.write(block)
                remaining -= len(block)
        out[label] = dest
    return out


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Callable[..., Path]:
    """Write a minimal GGUF: `tiny_gguf(arch="llama", template=None, tokens=[...], ...)`."""

    def make(arch: str = "llama", *, template: str | None = None,
             tokens: Sequence[str] = ("<unk>", "<s>", "</s>", "a", "b"),
             n_layers: int = 2, head_count: int | Sequence[int] = 2,
             head_count_kv: int | Sequence[int] = 1, file_type: int | None = None,
             name: str = "Tiny test", big_endian: bool = False,
             filename: str = "tiny.gguf") -> Path:
        import gguf
        import numpy as np

        path = tmp_path / filename
        endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
        w = gguf.GGUFWriter(str(path), arch, endianess=endian)
        w.add_name(name)
        w.add_block_count(n_layers)
        w.add_context_length(256)
        w.add_embedding_length(8)
        w.add_head_count(head_count)
        w.add_head_count_kv(head_count_kv)
        if file_type is not None:
            w.add_file_type(file_type)
        w.add_tokenizer_model("llama")
        w.add_token_list(list(tokens))
        w.add_token_scores([0.0] * len(tokens))
        w.add_token_types([1] * len(tokens))
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        if template is not None:
            w.add_chat_template(template)
        dtype = np.float32  # the writer byte-swaps for big-endian files itself
        w.add_tensor("token_embd.weight", np.ones((len(tokens), 8), dtype=dtype))
        for i in range(n_layers):
            w.add_tensor(f"blk.{i}.attn_q.weight", np.ones((8, 8), dtype=dtype))
            w.add_tensor(f"blk.{i}.ffn_up.weight", np.ones((16, 8), dtype=dtype))
        w.add_tensor("output_norm.weight", np.ones((8,), dtype=dtype))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path

    return make

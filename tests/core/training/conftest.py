"""Fixtures for the training tests: a tiny llama (HF folder + GGUF), the bundled model's
training base, synthetic feedback, and a runner for the training child."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ghostdesk.bench.learning import synthetic_kto_records
from ghostdesk.core.training.events import TrainingEvent
from ghostdesk.core.training.launcher import TrainingProcess
from ghostdesk.core.training.run_config import RunConfig, build_run_config

N_HEAD, N_HEAD_KV, HIDDEN, LAYERS = 4, 2, 64, 2


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def tiny_vocab() -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style vocabulary: specials, 256 byte tokens, printable characters."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    tokens += ["▁"] + [chr(c) for c in range(33, 127)]
    tokens += ["▁" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    n_plain = len(tokens) - 259
    types = [2, 3, 3] + [6] * 256 + [1] * n_plain
    scores = [0.0] * 259 + [-float(i) for i in range(n_plain)]
    return tokens, scores, types


def llama_permute(w: Any, n_head: int, n_head_kv: int | None = None) -> Any:
    # llama.cpp's convert_hf_to_gguf.py LlamaModel.permute, copied as the reference.
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def write_llama_gguf(model: Any, path: Path) -> Path:
    """The GGUF llama.cpp's converter would write for this HF llama (F32 tensors)."""
    import gguf
    import numpy as np

    tokens, scores, types = tiny_vocab()
    cfg = model.config
    arch = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == "llama")
    names = gguf.get_tensor_name_map(arch, cfg.num_hidden_layers)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("Tiny llama")
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    for key, tensor in model.state_dict().items():
        a = tensor.detach().float().numpy().astype(np.float32)
        if key.endswith("q_proj.weight"):
            a = llama_permute(a, cfg.num_attention_heads, cfg.num_attention_heads)
        elif key.endswith("k_proj.weight"):
            a = llama_permute(a, cfg.num_attention_heads, cfg.num_key_value_heads)
        w.add_tensor(names.get_name(key, try_suffixes=(".weight", ".bias")), a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@dataclass(frozen=True)
class TinyLlama:
    hf_dir: Path
    gguf: Path


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> TinyLlama:
    """A randomly initialised 2-layer llama with grouped-query attention (4 heads, 2 KV
    heads), as a Hugging Face folder and as the GGUF llama.cpp's converter would make."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    tokens, _, _ = tiny_vocab()
    cfg = LlamaConfig(vocab_size=len(tokens), hidden_size=HIDDEN, intermediate_size=128,
                      num_hidden_layers=LAYERS, num_attention_heads=N_HEAD,
                      num_key_value_heads=N_HEAD_KV, max_position_embeddings=256,
                      rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0,
                      initializer_range=0.1)
    model = LlamaForCausalLM(cfg).eval()
    gguf_path = write_llama_gguf(model, folder / "tiny-llama.gguf")
    hf_dir = folder / "hf"
    model.save_pretrained(hf_dir)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_path.name)
    tok.save_pretrained(hf_dir)
    return TinyLlama(hf_dir, gguf_path)


@pytest.fixture(scope="session")
def model_path() -> Path:
    from ghostdesk.core.llm.bundled import bundled_model_path

    return bundled_model_path()


@dataclass(frozen=True)
class GemmaBase:
    root: Path
    """A `<cache>/training-base` folder to link into a data folder."""
    model_dir: Path
    """The converted bundled model inside it."""


@pytest.fixture(scope="session")
def gemma_training_base(request: pytest.FixtureRequest, model_path: Path,
                        tmp_path_factory: pytest.TempPathFactory) -> GemmaBase:
    """The bundled model's training base. Converting takes ~1.5 min on two busy cores, so it
    is kept in pytest's cache folder between runs; the conversion is the product's own code
    (base_model.prepare_training_base)."""
    from ghostdesk.core.llm.fingerprint import model_sha256
    from ghostdesk.core.llm.gguf_info import read_model_info
    from ghostdesk.core.training.base_model import prepare_training_base

    store = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    cache = (Path(store.mkdir("ghostdesk-training")) if store is not None
             else tmp_path_factory.mktemp("ghostdesk-training"))
    sha = model_sha256(model_path, cache)
    base = prepare_training_base(read_model_info(model_path), sha, "auto", home=cache)
    return GemmaBase(base.model_dir.parent, base.model_dir)


def link_training_base(home: Path, base_root: Path) -> None:
    """Let a test's data folder use the shared converted base."""
    target = home / "cache" / "training-base"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.symlink(base_root, target, target_is_directory=True)


@pytest.fixture
def kto_files(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    def make(n_train: int = 16, n_eval: int = 8) -> tuple[Path, Path]:
        train = write_jsonl(tmp_path / "train.jsonl", synthetic_kto_records(n_train))
        held = write_jsonl(tmp_path / "eval.jsonl",
                           synthetic_kto_records(n_eval, seed=1, offset=20))
        return train, held

    return make


def tiny_run_config(home: Path, tiny: TinyLlama, train: Path, held: Path,
                    **overrides: Any) -> RunConfig:
    values = dict(max_steps=40, max_length=160, checkpoint_every=3, eval_generations=1,
                  generation_max_tokens=4, learning_rate=1e-3, threads=1)
    values.update(overrides)
    return build_run_config(method="kto", train_file=train, eval_file=held,
                            chat_model=tiny.gguf, home=home, n_train=16, device="cpu",
                            base=str(tiny.hf_dir), overrides=values)


def collect(proc: TrainingProcess, until: Callable[[TrainingEvent], bool] | None = None,
            ) -> Iterator[TrainingEvent]:
    for event in proc.events():
        yield event
        if until is not None and until(event):
            return

"""The training base: the chat GGUF dequantized and cached, or a checked HF folder loaded in
4 bits on CUDA (the CUDA path is exercised through its decisions; there is no GPU here)."""

from __future__ import annotations

import json
import shutil
import sys
import types
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ghostdesk.core.errors import TrainingError
from ghostdesk.core.llm.fingerprint import model_sha256
from ghostdesk.core.llm.gguf_info import read_model_info
from ghostdesk.core.training import base_model
from ghostdesk.core.training.base_model import (
    MARKER,
    TrainingBase,
    check_hf_folder,
    load_base,
    model_load_kwargs,
    prepare_training_base,
)
from tests.core.training.conftest import TinyLlama


def test_auto_converts_once_and_caches_by_hash(tmp_path: Path, tiny_llama: TinyLlama,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    info = read_model_info(tiny_llama.gguf)
    sha = model_sha256(tiny_llama.gguf, tmp_path)
    stages: list[str] = []
    base = prepare_training_base(info, sha, "auto", home=tmp_path, progress=stages.append)
    assert base.source == "gguf" and base.model_dir == tmp_path / "cache/training-base" / sha
    assert json.loads((base.model_dir / MARKER).read_text())["sha256"] == sha
    assert stages and stages[0].startswith("Converting the chat model for training")
    assert not [p for p in base.model_dir.parent.iterdir() if ".partial-" in p.name]

    model, tokenizer = load_base(base, cuda=False, load_in_4bit=None)
    original = AutoModelForCausalLM.from_pretrained(tiny_llama.hf_dir, dtype=torch.float32)
    ids = torch.tensor([[1, 300, 310, 320]])
    with torch.no_grad():
        # the dequantized copy is the model the GGUF holds (Q/K un-permuted by transformers)
        assert torch.allclose(model(ids).logits, original(ids).logits, atol=1e-5)
    assert tokenizer("<s>a", add_special_tokens=False)["input_ids"][0] == 1

    def must_not_convert(*_a: Any, **_k: Any) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(base_model, "convert_gguf", must_not_convert)
    assert prepare_training_base(info, sha, "auto", home=tmp_path) == base
    # an interrupted conversion (no marker) is not trusted
    (base.model_dir / MARKER).unlink()
    with pytest.raises(AssertionError, match="converted again"):
        prepare_training_base(info, sha, "auto", home=tmp_path)


def test_refusals_before_converting(tmp_path: Path, tiny_llama: TinyLlama,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    info = read_model_info(tiny_llama.gguf)
    with pytest.raises(TrainingError) as err:
        prepare_training_base(replace(info, architecture="rwkv7"), "x", "auto", home=tmp_path)
    assert "can't read this chat model's file directly (rwkv7" in err.value.message
    assert "original (Hugging Face) model" in err.value.hint

    import psutil

    class Tight:
        available = 2 * 2**30

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tight())
    big = replace(info, parameter_count=3_000_000_000, name="Big model")
    with pytest.raises(TrainingError) as err:
        prepare_training_base(big, "y", "auto", home=tmp_path)
    assert err.value.message.startswith("Big model is too large to train from its GGUF")
    assert "4 bits on an NVIDIA GPU" in err.value.hint
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.json"))


def test_hf_folder_is_checked_against_the_gguf(tmp_path: Path, tiny_llama: TinyLlama) -> None:
    info = read_model_info(tiny_llama.gguf)
    base = prepare_training_base(info, "sha", str(tiny_llama.hf_dir), home=tmp_path)
    assert (base.source, base.model_dir) == ("hf-folder", tiny_llama.hf_dir)

    other = tmp_path / "other"
    shutil.copytree(tiny_llama.hf_dir, other)
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 3,
                                                   "hidden_size": 32}))
    with pytest.raises(TrainingError) as err:
        check_hf_folder(other, info)
    assert "3 layers vs 2; hidden size 32 vs 64" in err.value.message
    (other / "config.json").write_text(json.dumps({**cfg, "model_type": "qwen2"}))
    with pytest.raises(TrainingError, match="architecture qwen2 vs llama"):
        check_hf_folder(other, info)

    (other / "config.json").write_text(json.dumps(cfg))
    for st in other.glob("*.safetensors"):
        st.rename(st.with_name("pytorch_model.bin"))
    with pytest.raises(TrainingError, match="PyTorch pickles"):
        check_hf_folder(other, info)
    with pytest.raises(TrainingError, match="does not exist"):
        check_hf_folder(tmp_path / "missing", info)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="no config.json"):
        check_hf_folder(tmp_path / "empty", info)


def test_mistral_folder_matches_a_llama_gguf(tmp_path: Path, tiny_llama: TinyLlama) -> None:
    info = read_model_info(tiny_llama.gguf)
    folder = tmp_path / "mistral"
    shutil.copytree(tiny_llama.hf_dir, folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "model_type": "mistral"}))
    check_hf_folder(folder, info)  # llama.cpp converts Mistral models as "llama"


def test_four_bit_on_cuda_for_hf_folders(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    import torch

    folder = TrainingBase(tmp_path, "hf-folder", "llama", tmp_path / "m.gguf", "s")
    gguf = replace(folder, source="gguf")
    assert model_load_kwargs(folder, cuda=False, load_in_4bit=None) == {"dtype": torch.float32}
    with pytest.raises(TrainingError, match="4-bit training needs an NVIDIA GPU"):
        model_load_kwargs(folder, cuda=False, load_in_4bit=True)

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # not installed
    with pytest.raises(TrainingError, match="needs the bitsandbytes package"):
        model_load_kwargs(folder, cuda=True, load_in_4bit=None)

    monkeypatch.setitem(sys.modules, "bitsandbytes", types.ModuleType("bitsandbytes"))
    kw = model_load_kwargs(folder, cuda=True, load_in_4bit=None)
    q = kw["quantization_config"]
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4"
    assert q.bnb_4bit_compute_dtype == torch.bfloat16 and kw["device_map"] == {"": 0}
    # a dequantized GGUF on CUDA trains in bfloat16; 4-bit can be turned off or forced
    assert "quantization_config" not in model_load_kwargs(gguf, cuda=True, load_in_4bit=None)
    assert "quantization_config" not in model_load_kwargs(folder, cuda=True, load_in_4bit=False)
    assert "quantization_config" in model_load_kwargs(gguf, cuda=True, load_in_4bit=True)

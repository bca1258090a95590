"""peft adapter -> llama.cpp LoRA GGUF: the change an adapter makes to the next-token logits
in llama.cpp equals the change it makes in transformers, and unsupported kinds are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ghostdesk.core.errors import AdapterError
from ghostdesk.core.training import adapter_gguf
from ghostdesk.core.training.adapter_gguf import (
    check_supported,
    convert_peft_to_gguf,
    permute_rows,
    read_adapter_weights,
)
from tests.core.training.conftest import (
    N_HEAD,
    N_HEAD_KV,
    GemmaBase,
    TinyLlama,
    llama_permute,
)

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# --- the permutation -----------------------------------------------------------------------


def test_permute_rows_is_llama_cpp_formula_and_transformers_undoes_it() -> None:
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    rng = np.random.default_rng(0)
    for n_head, n_kv in ((4, 4), (4, 2), (8, 1)):
        rows = n_kv * 2 * 3
        b = rng.normal(size=(rows, 5)).astype(np.float32)
        ours = permute_rows(b, n_head, n_kv)
        np.testing.assert_array_equal(ours, llama_permute(b, n_head, n_kv))
        back = LlamaTensorProcessor()._reverse_permute_weights(ours, n_head, n_kv)
        np.testing.assert_array_equal(back, b)
        # permuting B permutes the rows of B @ A, i.e. of the weight update
        a = rng.normal(size=(5, 7)).astype(np.float32)
        np.testing.assert_allclose(permute_rows(b, n_head, n_kv) @ a,
                                   llama_permute(b @ a, n_head, n_kv), rtol=1e-6)


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "words"), [
    ({"use_rslora": True}, "rsLoRA"),
    ({"use_dora": True}, "DoRA"),
    ({"rank_pattern": {"q_proj": 16}}, "rank or alpha per module"),
    ({"alpha_pattern": {"q_proj": 32}}, "rank or alpha per module"),
    ({"modules_to_save": ["lm_head"]}, "extra modules"),
    ({"target_modules": ["q_proj", "embed_tokens"]}, "embedding or output layer"),
    ({"target_modules": ["lm_head"]}, "embedding or output layer"),
    ({"peft_type": "IA3"}, "only LoRA"),
    ({"bias": "all"}, "biases"),
])
def test_unsupported_adapters_are_refused_with_a_reason(change: dict[str, Any],
                                                        words: str) -> None:
    cfg = {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"],
           "bias": "none", **change}
    with pytest.raises(AdapterError) as err:
        check_supported(cfg)
    assert words in str(err.value)
    assert "llama.cpp can't apply" in str(err.value)


def test_pickled_adapter_is_refused(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8,
                                                             "lora_alpha": 16}))
    (tmp_path / "adapter_model.bin").write_bytes(b"PK\x03\x04 not read")
    with pytest.raises(AdapterError) as err:
        convert_peft_to_gguf(tmp_path, tmp_path / "out.gguf", architecture="llama",
                             n_layers=2, n_head=4, n_head_kv=2)
    assert "adapter_model.bin" in str(err.value) and "pickle" in str(err.value)
    assert not (tmp_path / "out.gguf").exists()


def test_failed_write_leaves_no_file(tmp_path: Path, tiny_llama: TinyLlama,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    peft_dir = _random_lora(tiny_llama.hf_dir, tmp_path / "peft", scale=0.1)

    def full_disk(*_a: Any, **_k: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    import gguf

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", full_disk)
    with pytest.raises(OSError):
        convert_peft_to_gguf(peft_dir, tmp_path / "a.gguf", architecture="llama", n_layers=2,
                             n_head=N_HEAD, n_head_kv=N_HEAD_KV)
    assert not [p.name for p in tmp_path.iterdir() if p.suffix in (".gguf", ".tmp")]


# --- logits: llama.cpp vs transformers ----------------------------------------------------------


def _random_lora(base_dir: Path, out: Path, *, scale: float, r: int = 8, alpha: float = 16,
                 seed: int = 0) -> Path:
    """A LoRA with random, non-zero A and B on every projection, saved with peft."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, target_modules=TARGETS,
                                                  init_lora_weights=False))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn_like(p) * scale)
    peft_model.save_pretrained(out)
    return out


def _hf_last_logits(base_dir: Path, peft_dir: Path | None, ids: list[int]) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if peft_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, peft_dir)
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1].float().numpy()


def _cpp_last_logits(gguf_path: Path, adapter: Path | None, ids: list[int]) -> np.ndarray:
    import ctypes

    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(gguf_path), n_ctx=256, n_threads=2, verbose=False)
    handle = None
    try:
        if adapter is not None:
            handle = llama_cpp.llama_adapter_lora_init(llm.model, str(adapter).encode())
            assert handle, "llama.cpp refused the converted adapter"
            llama_cpp.llama_set_adapters_lora(
                llm.ctx, (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle), 1,
                (ctypes.c_float * 1)(1.0))
        llm.reset()
        llm.eval(ids)
        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).copy()
    finally:
        if handle:
            llama_cpp.llama_set_adapters_lora(llm.ctx, None, 0, None)
            llama_cpp.llama_adapter_lora_free(handle)
        llm.close()


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _top(x: np.ndarray, k: int) -> set[int]:
    return set(np.argsort(-x)[:k].tolist())


def test_llama_delta_matches_and_needs_the_qk_permutation(
        tmp_path: Path, tiny_llama: TinyLlama, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [1, 300, 301, 302, 310, 5, 77, 320, 330, 340, 350]
    base_hf = _hf_last_logits(tiny_llama.hf_dir, None, ids)
    base_cpp = _cpp_last_logits(tiny_llama.gguf, None, ids)
    # the hand-written GGUF is a faithful copy of the HF model
    np.testing.assert_allclose(base_cpp, base_hf, atol=2e-3 * max(1.0, np.abs(base_hf).max()))

    peft_dir = _random_lora(tiny_llama.hf_dir, tmp_path / "peft", scale=0.2)
    lora_hf = _hf_last_logits(tiny_llama.hf_dir, peft_dir, ids)
    kw = dict(architecture="llama", n_layers=2, n_head=N_HEAD, n_head_kv=N_HEAD_KV)
    good = convert_peft_to_gguf(peft_dir, tmp_path / "good.gguf", **kw)
    lora_cpp = _cpp_last_logits(tiny_llama.gguf, good, ids)

    d_hf, d_cpp = lora_hf - base_hf, lora_cpp - base_cpp
    assert np.linalg.norm(d_hf) > 0.5 * np.linalg.norm(base_hf)  # a large change
    assert _cosine(d_hf, d_cpp) > 0.999
    assert int(np.argmax(lora_hf)) == int(np.argmax(lora_cpp))
    assert len(_top(lora_hf, 5) & _top(lora_cpp, 5)) >= 4

    # Without permuting lora_B of Q and K the same adapter does something else.
    monkeypatch.setattr(adapter_gguf, "PERMUTED_QK", frozenset())
    bad = convert_peft_to_gguf(peft_dir, tmp_path / "bad.gguf", **kw)
    d_bad = _cpp_last_logits(tiny_llama.gguf, bad, ids) - base_cpp
    assert _cosine(d_hf, d_bad) < _cosine(d_hf, d_cpp) - 0.05


@pytest.mark.model
def test_gemma3_delta_matches(tmp_path: Path, gemma_training_base: GemmaBase,
                              model_path: Path) -> None:
    import llama_cpp

    from ghostdesk.core.llm.chat_format import render_chat
    from ghostdesk.core.llm.gguf_info import read_model_info
    from ghostdesk.core.llm.types import ChatMessage

    info = read_model_info(model_path)
    base_dir = gemma_training_base.model_dir
    text = render_chat([ChatMessage("user", "Tell me about tea.")], info).text
    vocab = llama_cpp.Llama(model_path=str(model_path), vocab_only=True, n_ctx=64,
                            verbose=False)
    ids = list(vocab.tokenize(text.encode(), add_bos=False, special=True))
    vocab.close()
    peft_dir = _random_lora(base_dir, tmp_path / "peft", scale=0.02, r=4, alpha=8)
    out = convert_peft_to_gguf(peft_dir, tmp_path / "gemma-lora.gguf",
                               architecture=info.architecture, n_layers=info.n_layers,
                               n_head=info.head_count[0], n_head_kv=info.head_count_kv[0])
    base_hf = _hf_last_logits(base_dir, None, ids)
    lora_hf = _hf_last_logits(base_dir, peft_dir, ids)
    base_cpp = _cpp_last_logits(model_path, None, ids)
    lora_cpp = _cpp_last_logits(model_path, out, ids)
    d_hf, d_cpp = lora_hf - base_hf, lora_cpp - base_cpp
    # llama.cpp runs the Q4_K weights with 8-bit activations; transformers runs the same
    # weights dequantized: the bases differ a little, the adapter's change must not.
    assert np.linalg.norm(d_hf) > 0.3 * np.linalg.norm(base_hf - base_hf.mean())
    assert _cosine(d_hf, d_cpp) > 0.95
    assert int(np.argmax(lora_hf)) == int(np.argmax(lora_cpp))
    assert len(_top(lora_hf, 10) & _top(lora_cpp, 10)) >= 7


def test_reads_only_safetensors(tmp_path: Path, tiny_llama: TinyLlama) -> None:
    peft_dir = _random_lora(tiny_llama.hf_dir, tmp_path / "peft", scale=0.1)
    weights = read_adapter_weights(peft_dir)
    assert weights and all(".lora_A." in k or ".lora_B." in k for k in weights)
    (peft_dir / "adapter_model.safetensors").rename(peft_dir / "adapter_model.bin")
    with pytest.raises(AdapterError, match="pickle"):
        read_adapter_weights(peft_dir)

"""A peft LoRA folder -> a llama.cpp LoRA GGUF, written with the `gguf` package.

llama.cpp applies `W x + scale * B (A x)` with scale = alpha / r, where A is stored as
`<tensor>.lora_a` ([r, in], peft's lora_A.weight) and B as `<tensor>.lora_b` ([out, r],
peft's lora_B.weight), no transposition. Tensor names come from gguf's name map for the
architecture. llama.cpp's converter permutes the rows of the Q and K weights of llama-family
models (its rotary layout differs from Hugging Face's), so the rows of those lora_B are
permuted the same way; Gemma, Qwen and Phi are stored unpermuted.

Only what llama.cpp can apply is converted: plain LoRA with one rank and one alpha on linear
layers. rsLoRA, DoRA, per-module ranks or alphas, extra trained modules (modules_to_save) and
LoRA on the embedding or output layer are refused with a reason, as is a pickled
`adapter_model.bin`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ghostdesk.core.errors import AdapterError
from ghostdesk.core.llm.adapters import ADAPTER_ID_KEY, BASE_NAME_KEY, BASE_SHA_KEY

# GGUF architectures whose Q/K rows llama.cpp's converter permutes (LlamaModel.permute).
PERMUTED_QK = frozenset({"llama", "deci", "granite", "granitemoe", "minicpm", "arcee"})
_PREFIXES = ("base_model.model.",)
_EMBEDDING_NAMES = ("embed_tokens", "lm_head", "wte", "embed_out", "word_embeddings")


def permute_rows(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """llama.cpp's `LlamaModel.permute` (convert_hf_to_gguf.py): within each head, the two
    interleaved halves of the rotary dimensions become contiguous. Works on any [out, ...]
    array, so it applies to lora_B as to the full weight (rows of B @ A are rows of B)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    rows = w.shape[0]
    if rows % (n_head * 2):
        raise AdapterError(f"A Q/K tensor has {rows} rows, not a multiple of 2 x {n_head} heads.")
    return (w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def read_adapter_config(folder: Path) -> dict[str, Any]:
    try:
        cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise AdapterError(f"{folder} is not a LoRA adapter folder (no adapter_config.json).",
                           hint="Choose the folder peft saved the adapter into.") from err
    except (OSError, ValueError) as err:
        raise AdapterError(f"The adapter_config.json in {folder} can't be read: {err}") from err
    if not isinstance(cfg, dict):
        raise AdapterError(f"The adapter_config.json in {folder} is not a configuration.")
    return cfg


def check_supported(cfg: Mapping[str, Any]) -> None:
    """Refuse the adapter kinds llama.cpp can't apply, saying why."""
    def refuse(what: str) -> None:
        raise AdapterError(f"This adapter uses {what}, which llama.cpp can't apply.",
                           hint="Train a plain LoRA (GhostDesk's own training does).")

    if str(cfg.get("peft_type", "LORA")).upper() != "LORA":
        refuse(f"the {cfg.get('peft_type')} method (only LoRA is supported)")
    if cfg.get("use_rslora"):
        refuse("rank-stabilized scaling (rsLoRA)")
    if cfg.get("use_dora"):
        refuse("DoRA (weight decomposition)")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        refuse("a different rank or alpha per module")
    if cfg.get("modules_to_save"):
        refuse(f"fully trained extra modules ({', '.join(cfg['modules_to_save'])})")
    if cfg.get("trainable_token_indices"):
        refuse("trained token embeddings")
    if cfg.get("target_parameters"):
        refuse("LoRA on raw parameters (target_parameters)")
    if cfg.get("lora_bias") or str(cfg.get("bias", "none")) != "none":
        refuse("trained biases")
    if cfg.get("fan_in_fan_out"):
        refuse("transposed (Conv1D) layers")
    targets = cfg.get("target_modules") or []
    if isinstance(targets, str):
        targets = [targets]
    bad = [t for t in targets if any(e in str(t) for e in _EMBEDDING_NAMES)]
    if bad:
        refuse(f"LoRA on the embedding or output layer ({', '.join(bad)})")


def read_adapter_weights(folder: Path) -> dict[str, np.ndarray]:
    """The LoRA tensors from adapter_model.safetensors, as float32 numpy arrays."""
    st = folder / "adapter_model.safetensors"
    if not st.is_file():
        if (folder / "adapter_model.bin").exists():
            raise AdapterError(
                f"The adapter in {folder.name} is saved as adapter_model.bin, a PyTorch "
                "pickle that can run code when loaded; GhostDesk reads only "
                "adapter_model.safetensors.",
                hint="Save the adapter again with safetensors (peft's default: "
                     "save_pretrained(..., safe_serialization=True)).")
        raise AdapterError(f"{folder} has no adapter_model.safetensors.",
                           hint="Choose the folder peft saved the adapter into.")
    try:
        from safetensors.numpy import load_file

        return {k: np.asarray(v, dtype=np.float32) for k, v in load_file(str(st)).items()}
    except Exception as err:
        # bfloat16 has no numpy type: read through torch, still from safetensors.
        try:
            from safetensors.torch import load_file as load_torch

            return {k: v.float().numpy() for k, v in load_torch(str(st)).items()}
        except Exception:
            raise AdapterError(f"{st.name} in {folder.name} is damaged: {err}") from err


def _arch_enum(architecture: str) -> Any:
    import gguf

    for enum, name in gguf.MODEL_ARCH_NAMES.items():
        if name == architecture:
            return enum
    raise AdapterError(f"The gguf package does not know the {architecture} architecture.",
                       hint="Update GhostDesk.")


def _module_of(key: str) -> tuple[str, str]:
    """("model.layers.0.self_attn.q_proj", "A") from a peft tensor key."""
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
    for part in ("A", "B"):
        suffix = f".lora_{part}.weight"
        if key.endswith(suffix):
            return key[: -len(suffix)], part
        named = f".lora_{part}.default.weight"
        if key.endswith(named):
            return key[: -len(named)], part
    raise AdapterError(f"The adapter holds a tensor that is not a LoRA factor: {key}.",
                       hint="Only plain LoRA adapters can be converted.")


def lora_tensors(weights: Mapping[str, np.ndarray], architecture: str, n_layers: int,
                 n_head: int, n_head_kv: int) -> list[tuple[str, np.ndarray]]:
    """[(gguf name, array)] for every LoRA factor, permuted where llama.cpp needs it."""
    import gguf

    name_map = gguf.get_tensor_name_map(_arch_enum(architecture), n_layers)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in weights.items():
        module, part = _module_of(key)
        if any(module.endswith(e) or f".{e}" in module for e in _EMBEDDING_NAMES):
            raise AdapterError("This adapter has LoRA on the embedding or output layer, which "
                               "llama.cpp can't apply.",
                               hint="Train a LoRA on the attention and MLP layers only.")
        pairs.setdefault(module, {})[part] = value
    out: list[tuple[str, np.ndarray]] = []
    permute = architecture in PERMUTED_QK
    for module in sorted(pairs):
        parts = pairs[module]
        if set(parts) != {"A", "B"}:
            raise AdapterError(f"The adapter is incomplete: {module} lacks lora_"
                               f"{'B' if 'A' in parts else 'A'}.")
        a, b = parts["A"], parts["B"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise AdapterError(f"The LoRA factors of {module} have shapes {a.shape} and "
                               f"{b.shape}, which do not multiply.")
        base = name_map.get_name(module + ".weight", try_suffixes=(".weight",))
        if base is None:
            raise AdapterError(f"The adapter changes {module}, which has no counterpart in "
                               f"llama.cpp's {architecture} model.",
                               hint="Train the adapter with GhostDesk for this model.")
        base = base.removesuffix(".weight")
        if permute and base.endswith(".attn_q"):
            b = permute_rows(b, n_head, n_head)
        elif permute and base.endswith(".attn_k"):
            b = permute_rows(b, n_head, n_head_kv)
        out.append((f"{base}.weight.lora_a", np.ascontiguousarray(a, dtype=np.float32)))
        out.append((f"{base}.weight.lora_b", np.ascontiguousarray(b, dtype=np.float32)))
    if not out:
        raise AdapterError("The adapter holds no LoRA weights.")
    return out


def convert_peft_to_gguf(peft_dir: str | Path, out_path: str | Path, *, architecture: str,
                         n_layers: int, n_head: int, n_head_kv: int, base_sha256: str = "",
                         base_name: str = "", adapter_id: str = "") -> Path:
    """Write `out_path` (a llama.cpp LoRA GGUF) from the peft folder `peft_dir`.

    The file is written under a temporary name and renamed when complete; on any error
    (a full disk included) nothing is left at `out_path`."""
    import gguf

    folder = Path(peft_dir)
    cfg = read_adapter_config(folder)
    check_supported(cfg)
    alpha = cfg.get("lora_alpha")
    if not isinstance(alpha, int | float) or isinstance(alpha, bool) or alpha <= 0:
        raise AdapterError(f"The adapter's lora_alpha ({alpha!r}) is not a positive number.")
    tensors = lora_tensors(read_adapter_weights(folder), architecture, n_layers, n_head,
                           n_head_kv)
    out = Path(out_path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        writer = gguf.GGUFWriter(str(tmp), architecture)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
        writer.add_name(f"GhostDesk adapter {adapter_id}".strip())
        if base_sha256:
            writer.add_string(BASE_SHA_KEY, base_sha256)
        if base_name:
            writer.add_string(BASE_NAME_KEY, base_name)
        if adapter_id:
            writer.add_string(ADAPTER_ID_KEY, adapter_id)
        for name, array in tensors:
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return out

"""The trainable model under the LoRA: the chat GGUF dequantized, or the original HF folder.

*Auto* (the default) needs nothing but the chat model: transformers reads the GGUF
(`from_pretrained(folder, gguf_file=name)`) and dequantizes it to float. That takes about a
minute and a half for the bundled 270M model on two CPU cores, so the result is saved with
`save_pretrained` under `<data>/cache/training-base/<sha256 of the GGUF>` and loads in
seconds afterwards. The folder is written under a temporary name and renamed when complete,
so an interrupted conversion is never mistaken for a finished one.

For 20-34B chat models a float copy does not fit in memory: the user points to the original
Hugging Face folder of the same model instead, which is checked against the GGUF
(architecture, layers, hidden size) and loaded in 4 bits with bitsandbytes on CUDA (QLoRA).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import TrainingError
from ghostdesk.core.llm.gguf_info import ModelInfo

MARKER = "ghostdesk-base.json"
"""Written last into a converted base; a folder without it is an interrupted conversion."""
FLOAT32_MAX_PARAMS = 4_000_000_000
"""Above this, a dequantized base is kept in bfloat16 (float32 would need 4 bytes a weight)."""

# Hugging Face model_type -> the GGUF architecture llama.cpp's converter gives it.
_HF_TO_GGUF = {"gemma3_text": "gemma3", "mistral": "llama", "qwen2_moe": "qwen2moe",
               "qwen3_moe": "qwen3moe", "gemma4_text": "gemma4", "minimax_m2": "minimax-m2"}


@dataclass(frozen=True)
class TrainingBase:
    """Where the trainable weights are and how to load them."""

    model_dir: Path
    source: str
    """"gguf" (a dequantized copy of the chat model) or "hf-folder" (the user's folder)."""
    architecture: str
    """The chat model's GGUF architecture (e.g. "gemma3")."""
    chat_model: Path
    chat_model_sha256: str


def base_cache_root(home: str | Path) -> Path:
    return Path(home) / "cache" / "training-base"


def gguf_arch_of_hf(model_type: str) -> str:
    return _HF_TO_GGUF.get(model_type, model_type)


def _norm(arch: str) -> str:
    return arch.replace("_", "").replace("-", "").lower()


def transformers_reads_gguf(arch: str) -> bool:
    """Whether transformers can dequantize a GGUF of this architecture."""
    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    except Exception:
        return False
    return _norm(arch) in {_norm(a) for a in GGUF_SUPPORTED_ARCHITECTURES}


def prepare_training_base(info: ModelInfo, sha256: str, base: str, *, home: str | Path,
                          progress: Callable[[str], None] | None = None) -> TrainingBase:
    """Check or build the training base for the chat model described by `info`."""
    chat_model = Path(info.path)
    if base and base != "auto":
        folder = Path(base).expanduser()
        check_hf_folder(folder, info)
        return TrainingBase(folder, "hf-folder", info.architecture, chat_model, sha256)
    dest = base_cache_root(home) / sha256
    if not _complete(dest, sha256):
        convert_gguf(info, sha256, dest, progress=progress)
    return TrainingBase(dest, "gguf", info.architecture, chat_model, sha256)


def _complete(folder: Path, sha256: str) -> bool:
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("sha256") == sha256


def convert_gguf(info: ModelInfo, sha256: str, dest: Path, *,
                 progress: Callable[[str], None] | None = None) -> None:
    """Dequantize the GGUF into a Hugging Face folder at `dest` (atomically)."""
    arch = info.architecture
    if not transformers_reads_gguf(arch):
        raise TrainingError(
            f"Training can't read this chat model's file directly ({arch} architecture).",
            hint="In Settings → Training, choose the folder of the original (Hugging Face) "
                 "model this GGUF was made from.")
    dtype_name = "float32" if info.parameter_count <= FLOAT32_MAX_PARAMS else "bfloat16"
    need = info.parameter_count * (4 if dtype_name == "float32" else 2)
    _check_memory(need, info)
    _check_disk(dest.parent, need, info)
    if progress:
        progress("Converting the chat model for training (only the first time; about "
                 f"{_duration_guess(info)})…")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(info.path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=getattr(torch, dtype_name))
        # The weights are plain floats now; transformers still marks the model as
        # GGUF-quantized and refuses to save it while that mark is there.
        model.hf_quantizer = None
        for cfg in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
            if hasattr(cfg, "quantization_config"):
                del cfg.quantization_config
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        marker = {"sha256": sha256, "source": gguf_path.name, "architecture": arch,
                  "n_layers": info.n_layers, "hidden_size": info.embedding_length,
                  "dtype": dtype_name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with open(partial / MARKER, "w", encoding="utf-8") as fh:
            json.dump(marker, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        if dest.exists():
            shutil.rmtree(dest)  # an interrupted older conversion
        os.replace(partial, dest)
    except OSError as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise TrainingError(f"Could not save the converted model: {err.strerror or err}.",
                            hint=f"Free disk space in {dest.parent} and try again.") from err
    except TrainingError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    except Exception as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise TrainingError(
            f"Could not convert {gguf_path.name} for training: {err}",
            hint="Choose the original (Hugging Face) model folder in Settings → Training.",
        ) from err


def _duration_guess(info: ModelInfo) -> str:
    minutes = max(1, round(info.parameter_count / 200e6))
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


def _check_memory(need: int, info: ModelInfo) -> None:
    try:
        import psutil

        available = psutil.virtual_memory().available
    except Exception:
        return
    # Loading holds the dequantized weights plus transient copies of single tensors.
    if need * 1.2 > available:
        raise TrainingError(
            f"{info.display_name} is too large to train from its GGUF on this computer: the "
            f"float copy needs about {need / 2**30:.0f} GiB of memory, "
            f"{available / 2**30:.0f} GiB are free.",
            hint="Choose the original (Hugging Face) model folder in Settings → Training to "
                 "train it in 4 bits on an NVIDIA GPU, or use a smaller model.")


def _check_disk(folder: Path, need: int, info: ModelInfo) -> None:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return
    if need > free:
        raise TrainingError(
            f"Not enough disk space to prepare {info.display_name} for training: it needs "
            f"about {need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB are free.",
            hint=f"Free some space on the disk holding {folder}.")


def read_hf_config(folder: Path) -> dict[str, Any]:
    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except OSError as err:
        raise TrainingError(f"{folder} is not a Hugging Face model folder (no config.json).",
                            hint="Choose the folder that holds config.json and the "
                                 ".safetensors weights.") from err
    except ValueError as err:
        raise TrainingError(f"The config.json in {folder} is damaged: {err}") from err
    if not isinstance(raw, dict):
        raise TrainingError(f"The config.json in {folder} is not a model configuration.")
    return raw


def check_hf_folder(folder: Path, info: ModelInfo) -> None:
    """Refuse a folder whose model is not the one the GGUF was made from."""
    if not folder.is_dir():
        raise TrainingError(f"The base model folder {folder} does not exist.",
                            hint="Choose another folder in Settings → Training, or Auto.")
    cfg = read_hf_config(folder)
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    model_type = str(text.get("model_type") or cfg.get("model_type") or "")
    arch = gguf_arch_of_hf(model_type)
    layers = text.get("num_hidden_layers")
    hidden = text.get("hidden_size")
    problems = []
    if _norm(arch) != _norm(info.architecture) and _norm(model_type) != _norm(
            info.architecture):
        problems.append(f"architecture {model_type or 'unknown'} vs {info.architecture}")
    if info.n_layers and layers != info.n_layers:
        problems.append(f"{layers} layers vs {info.n_layers}")
    if info.embedding_length and hidden != info.embedding_length:
        problems.append(f"hidden size {hidden} vs {info.embedding_length}")
    if problems:
        raise TrainingError(
            f"The model in {folder.name} is not the one the chat model "
            f"{info.display_name} was made from ({'; '.join(problems)}).",
            hint="Choose the original folder of the chat model, or Auto.")
    weights = list(folder.glob("*.safetensors"))
    if not weights:
        pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        if pickled:
            raise TrainingError(
                f"{folder.name} holds its weights as PyTorch pickles ({pickled[0]}), which "
                "can run code when loaded; GhostDesk reads only .safetensors.",
                hint="Download the safetensors version of the model.")
        raise TrainingError(f"{folder.name} has no .safetensors weights.",
                            hint="Choose the folder that holds the model's weights.")


def model_load_kwargs(base: TrainingBase, *, cuda: bool, load_in_4bit: bool | None,
                      ) -> dict[str, Any]:
    """Arguments for `from_pretrained`: bfloat16 or 4-bit on CUDA, float32 on a CPU.

    4-bit (QLoRA) is used for a user's HF folder on CUDA unless turned off, and never on a
    CPU (bitsandbytes' 4-bit kernels need CUDA)."""
    import torch

    if load_in_4bit and not cuda:
        raise TrainingError("4-bit training needs an NVIDIA GPU with CUDA.",
                            hint="Turn off 4-bit in Settings → Training → Advanced.")
    four_bit = bool(cuda and (load_in_4bit if load_in_4bit is not None
                              else base.source == "hf-folder"))
    if not cuda:
        return {"dtype": torch.float32}
    if not four_bit:
        return {"dtype": torch.bfloat16, "device_map": {"": 0}}
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError as err:
        raise TrainingError("4-bit training needs the bitsandbytes package.",
                            hint="Install it (pip install bitsandbytes) or turn off 4-bit "
                                 "in Settings → Training → Advanced.") from err
    return {"dtype": torch.bfloat16, "device_map": {"": 0},
            "quantization_config": BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_use_double_quant=True)}


def load_tokenizer(base: TrainingBase) -> Any:
    """The base's tokenizer, adding no BOS/EOS of its own: the rendered chat text already
    holds them, as it does for llama.cpp."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base.model_dir)
    except (OSError, ValueError) as err:
        raise TrainingError(f"Could not load the tokenizer from {base.model_dir}: {err}",
                            hint="Choose the base model again in Settings → Training.") from err
    for attr in ("add_bos_token", "add_eos_token"):
        with contextlib.suppress(AttributeError, ValueError):
            setattr(tokenizer, attr, False)
    return tokenizer


def load_base(base: TrainingBase, *, cuda: bool, load_in_4bit: bool | None) -> tuple[Any, Any]:
    """(model, tokenizer) ready for peft."""
    from transformers import AutoModelForCausalLM

    kwargs = model_load_kwargs(base, cuda=cuda, load_in_4bit=load_in_4bit)
    tokenizer = load_tokenizer(base)
    try:
        model = AutoModelForCausalLM.from_pretrained(base.model_dir, use_safetensors=True,
                                                     **kwargs)
    except OSError as err:
        raise TrainingError(f"Could not load the training base from {base.model_dir}: {err}",
                            hint="Choose the base model again in Settings → Training.") from err
    if "quantization_config" in kwargs:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    return model, tokenizer

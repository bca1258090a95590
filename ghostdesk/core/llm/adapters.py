"""Hot-swapping a LoRA adapter into the running chat model, without reloading it.

llama.cpp keeps the adapter next to the loaded weights and applies it per context
(`llama_adapter_lora_init` on the model, `llama_set_adapters_lora` on the context): a swap
takes milliseconds, where passing `lora_path=` to `Llama(...)` reloads the whole model (and
turns off mmap). After a swap the cached prompt state was computed under the old weights, so
it is reset. Every call runs in the engine's lane, so a swap never lands mid-reply.

Before loading, the adapter's GGUF header is checked: an adapter made for another
architecture or another model file is refused with a message that says so, and pickled
weights (`adapter_model.bin`) are never read.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import AdapterError, ModelFileError

BASE_SHA_KEY = "ghostdesk.base_sha256"
BASE_NAME_KEY = "ghostdesk.base_name"
ADAPTER_ID_KEY = "ghostdesk.adapter_id"


@dataclass(frozen=True)
class ActiveAdapter:
    """The adapter a reply was produced with (for the reply's audit trail)."""

    id: str
    path: str
    scale: float
    seconds: float = 0.0
    """How long the swap took."""


@dataclass(frozen=True)
class AdapterHeader:
    architecture: str
    base_sha256: str
    base_name: str
    adapter_id: str


def read_adapter_header(path: str | Path) -> AdapterHeader:
    """The facts needed to accept or refuse an adapter file, from its GGUF header."""
    from ghostdesk.core.llm.gguf_info import read_model_info

    p = Path(path).expanduser()
    if p.is_dir():
        if (p / "adapter_model.bin").exists() and not (p / "adapter.gguf").exists():
            raise _pickle_refusal(p)
        if (p / "adapter.gguf").is_file():
            p = p / "adapter.gguf"
        else:
            raise AdapterError(f"{p} holds no adapter.gguf.",
                               hint="Choose an adapter trained by GhostDesk, or a llama.cpp "
                                    "LoRA .gguf file.")
    if p.suffix.lower() in (".bin", ".pt", ".pth", ".pkl"):
        raise _pickle_refusal(p)
    if p.suffix.lower() == ".safetensors":
        raise AdapterError(f"{p.name} is a peft adapter, not a llama.cpp one.",
                           hint="Convert it first (GhostDesk converts its own adapters).")
    try:
        info = read_model_info(p)
    except ModelFileError as err:
        raise AdapterError(f"{p.name} is not a usable LoRA adapter: {err.message}",
                           hint=err.hint) from err
    meta = info.metadata
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise AdapterError(f"{p.name} is a model file, not a LoRA adapter.",
                           hint="Choose the adapter's .gguf file.")
    return AdapterHeader(architecture=info.architecture,
                         base_sha256=str(meta.get(BASE_SHA_KEY, "")),
                         base_name=str(meta.get(BASE_NAME_KEY, "")),
                         adapter_id=str(meta.get(ADAPTER_ID_KEY, "")))


def _pickle_refusal(p: Path) -> AdapterError:
    return AdapterError(
        f"{p.name} stores its weights as a PyTorch pickle (adapter_model.bin), which can run "
        "code when loaded, so GhostDesk does not open it.",
        hint="Use an adapter saved as safetensors and converted to GGUF.")


class AdapterSlot:
    """The one LoRA slot of a LlamaEngine.

    `model_sha256` returns the SHA-256 of the loaded model file (cached by the caller, e.g.
    `lambda: model_sha256(path, cache_dir)`); adapters that record the file they were trained
    for are refused on any other file. Without it only the architecture is checked."""

    def __init__(self, engine: Any, *, model_sha256: Callable[[], str] | None = None) -> None:
        self._engine = engine
        self._model_sha256 = model_sha256
        self._handle: Any = None
        self._active: ActiveAdapter | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> ActiveAdapter | None:
        return self._active

    def check(self, path: str | Path) -> AdapterHeader:
        """Raise AdapterError when the adapter can't be used with the loaded model."""
        header = read_adapter_header(path)
        info = self._engine.model_info
        loaded_arch = info.architecture
        if header.architecture != loaded_arch:
            raise AdapterError(
                f"This adapter was trained for a {header.architecture} model, not "
                f"{info.display_name} ({loaded_arch}), the loaded model.",
                hint="Load the model it was trained for, or train a new adapter.")
        if header.base_sha256 and self._model_sha256 is not None:
            loaded_sha = self._model_sha256()
            if loaded_sha and loaded_sha != header.base_sha256:
                made_for = header.base_name or "another model file"
                raise AdapterError(
                    f"This adapter was trained for {made_for}, not the loaded model file "
                    f"{Path(info.path).name}.",
                    hint="An adapter only fits the exact model file it was trained from: load "
                         "that file, or train a new adapter for this one.")
        return header

    def activate(self, path: str | Path, scale: float = 1.0, *,
                 adapter_id: str = "") -> ActiveAdapter:
        """Apply the adapter at `path` (a .gguf, or an adapter folder holding adapter.gguf)
        to every following reply, replacing the current one."""
        import llama_cpp

        header = self.check(path)
        p = Path(path).expanduser()
        gguf_path = p / "adapter.gguf" if p.is_dir() else p
        from ghostdesk.core.llm.probe import collect_llama_errors

        with self._lock, self._engine.lane() as llm:
            start = time.perf_counter()
            with collect_llama_errors() as log:
                handle = llama_cpp.llama_adapter_lora_init(llm.model, str(gguf_path).encode())
            if not handle:
                detail = log[-1] if log else "its tensors do not fit the loaded model"
                raise AdapterError(
                    f"llama.cpp could not load the adapter {gguf_path.name}: {detail}.",
                    hint="Train a new adapter for this model.")
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle)
            scales = (ctypes.c_float * 1)(float(scale))
            if llama_cpp.llama_set_adapters_lora(llm.ctx, adapters, 1, scales) != 0:
                llama_cpp.llama_adapter_lora_free(handle)
                raise AdapterError(f"llama.cpp could not apply the adapter {gguf_path.name}.")
            old, self._handle = self._handle, handle
            if old:
                llama_cpp.llama_adapter_lora_free(old)  # the context no longer refers to it
            llm.reset()  # the cached prompt was computed without this adapter
            seconds = time.perf_counter() - start
        self._active = ActiveAdapter(id=adapter_id or header.adapter_id or gguf_path.stem,
                                     path=str(gguf_path), scale=float(scale), seconds=seconds)
        return self._active

    def deactivate(self) -> None:
        """Back to the base model (exactly: no adapter on the context)."""
        import llama_cpp

        with self._lock:
            if self._handle is None:
                self._active = None
                return
            if self._engine.closed:
                # Freeing the model freed its adapters with it.
                self._handle, self._active = None, None
                return
            with self._engine.lane() as llm:
                llama_cpp.llama_set_adapters_lora(llm.ctx, None, 0, None)
                llama_cpp.llama_adapter_lora_free(self._handle)
                self._handle, self._active = None, None
                llm.reset()

    def close(self) -> None:
        """Free the adapter before the engine closes (safe to call after, too)."""
        self.deactivate()

"""Decides how many model layers go on the GPU, from the model's sizes and free GPU memory.

llama-cpp-python has no automatic setting, and a guess that is too big fails at load time,
so "auto" is computed here from GGUF metadata. How llama.cpp places layers:
- `n_gpu_layers = k <= n_layers` puts the *last* k repeating blocks on the GPU, each with
  its share of the KV cache;
- `k = n_layers + 1` also puts the output layer there (output.weight, or a copy of the
  token embedding when the two are tied, as in Gemma). The input embedding stays on the CPU.
- With several GPUs, llama.cpp's default split spreads layers over all of them in proportion
  to their free memory, so the budget here is the sum of free memory over devices, with the
  safety margin kept on each one.
The KV cache estimate gives every layer all n_ctx tokens in f16. That is exact for
llama-cpp-python 0.3.36, which keeps full-size caches for sliding-window layers (Gemma 2/3)
so that earlier turns' cache can be reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ghostdesk.core.llm.gpu_probe import GpuDevice, GpuStatus

MIB = 1024 * 1024
MIN_MARGIN = 512 * MIB
"""Kept free on each GPU for the CUDA context and compute buffers, which GGUF metadata does
not describe; 10% of free memory when that is larger."""


class Footprint(Protocol):
    """The sizes the planner needs; ModelInfo provides them."""

    n_layers: int
    layer_bytes: Sequence[int]
    output_bytes: int

    @property
    def kv_bytes_per_token_layer(self) -> Sequence[int]: ...


@dataclass(frozen=True)
class ModelFootprint:
    """A Footprint built by hand (tests, what-if estimates)."""

    layer_bytes: tuple[int, ...]
    output_bytes: int
    kv_bytes_per_token_layer: tuple[int, ...]

    @property
    def n_layers(self) -> int:
        return len(self.layer_bytes)


@dataclass(frozen=True)
class OffloadPlan:
    n_gpu_layers: int
    """What to pass to llama.cpp: 0 = CPU only, n_layers + 1 = everything."""
    device_summary: str
    """e.g. "CPU" or "GPU: 12/19 layers (NVIDIA GeForce RTX 3060)"."""
    reason: str
    """What was chosen and why, in words a person can act on."""
    fallback_to_cpu: bool
    """True when a GPU was wanted (or possible) but the model runs on the CPU anyway."""


def margin_bytes(device: GpuDevice) -> int:
    return max(MIN_MARGIN, device.free_bytes // 10)


def plan_offload(model: Footprint, n_ctx: int, requested: str | int,
                 gpu: GpuStatus) -> OffloadPlan:
    """Choose n_gpu_layers. `requested` is "auto" or a number (-1 = all layers)."""
    n_layers = int(model.n_layers)
    total = n_layers + 1  # llama.cpp counts the output layer as one more
    names = _device_names(gpu.devices)
    if isinstance(requested, str) and requested.strip().lstrip("-").isdigit():
        requested = int(requested)

    if requested != "auto":
        return _explicit(int(requested), n_layers, gpu, names)
    if not gpu.backend_supports_gpu:
        seen = f", so {names} is not used" if gpu.devices else ""
        return OffloadPlan(0, "CPU", f"This llama.cpp build has no GPU support{seen}; running "
                           "on CPU.", True)
    if not gpu.devices:
        return OffloadPlan(0, "CPU", "No GPU with known free memory was found; running on "
                           "CPU. Set GPU layers to a number to offload anyway.", True)
    if n_layers <= 0:
        return OffloadPlan(0, "CPU", "The model file does not say how many layers it has, so "
                           "none were put on the GPU; running on CPU.", True)

    free = sum(d.free_bytes for d in gpu.devices)
    margin = sum(margin_bytes(d) for d in gpu.devices)
    budget = free - margin
    kv = list(model.kv_bytes_per_token_layer) or [0] * n_layers
    costs = [int(b) + int(kv[i] if i < len(kv) else 0) * n_ctx
             for i, b in enumerate(model.layer_bytes)]
    everything = sum(costs) + int(model.output_bytes)
    spare = f"{_mib(free)} MiB free, {_mib(margin)} MiB kept spare"

    if everything <= budget:
        return OffloadPlan(total, f"GPU: {total}/{total} layers ({names})",
                           f"All {total} layers fit on the GPU: about {_mib(everything)} MiB "
                           f"for the model and a {n_ctx}-token cache ({spare}).", False)
    used = fitted = 0
    for cost in reversed(costs):  # llama.cpp offloads the last blocks first
        if used + cost > budget:
            break
        used += cost
        fitted += 1
    if fitted == 0:
        per_layer = _mib(max(costs, default=0))
        return OffloadPlan(0, "CPU", f"Not even one layer fits on the GPU ({spare}; a layer "
                           f"needs about {per_layer} MiB with a {n_ctx}-token cache); running "
                           "on CPU.", True)
    return OffloadPlan(fitted, f"GPU: {fitted}/{total} layers ({names})",
                       f"{fitted} of {total} layers fit on the GPU: about {_mib(used)} MiB "
                       f"with a {n_ctx}-token cache ({spare}); the rest runs on the CPU, "
                       f"the whole model would need about {_mib(everything)} MiB.", False)


def _explicit(n: int, n_layers: int, gpu: GpuStatus, names: str) -> OffloadPlan:
    total = n_layers + 1
    if n == 0:
        return OffloadPlan(0, "CPU", "CPU only: GPU layers is set to 0 by you.", False)
    if not gpu.backend_supports_gpu:
        return OffloadPlan(0, "CPU", f"GPU layers is set to {n} by you, but this llama.cpp "
                           "build has no GPU support; running on CPU.", True)
    if n < 0 or n > total:
        n = total
    where = names if gpu.devices else "GPU"
    what = "All" if n == total else f"{n} of"
    return OffloadPlan(n, f"GPU: {n}/{total} layers ({where})",
                       f"{what} {total} layers on the GPU, as set by you.", False)


def _device_names(devices: Sequence[GpuDevice]) -> str:
    if not devices:
        return "GPU"
    names = [d.name for d in devices]
    if len(set(names)) == 1 and len(names) > 1:
        return f"{len(names)}× {names[0]}"
    return ", ".join(names)


def _mib(n: int) -> int:
    return round(n / MIB)

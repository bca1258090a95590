"""What this computer has (cores, memory, NVIDIA GPUs and their free memory) and which model
size it should run.

Detection never fails: a missing nvidia-smi, a CPU-only llama.cpp build or an unreadable
value gives "no GPU" or a zero, and the recommendation says why it chose what it chose.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field

from ghostdesk.core.llm.gpu_probe import GpuDevice, GpuStatus
from ghostdesk.core.models.catalogue import GIB, Catalogue, CatalogueModel, Tier

APPLE_GPU_SHARE = 0.65
"""Share of unified memory a Mac lets the GPU use for a model (the rest stays with the OS)."""
SMALL_RAM_GIB = 4.0
"""Below this much memory only the bundled model is suggested."""


@dataclass(frozen=True)
class HardwareInfo:
    cpu_physical_cores: int
    cpu_logical_cores: int
    ram_total_bytes: int
    ram_available_bytes: int
    gpus: tuple[GpuDevice, ...] = ()
    gpu_offload_supported: bool = False
    """Whether this llama.cpp build can put layers on a GPU at all."""
    system: str = field(default_factory=platform.system)

    @property
    def best_gpu(self) -> GpuDevice | None:
        return max(self.gpus, key=lambda g: g.total_bytes) if self.gpus else None

    @property
    def is_apple_shared_memory(self) -> bool:
        gpu = self.best_gpu
        return gpu is not None and gpu.name.startswith("Apple")

    def gpu_budget_bytes(self) -> int:
        """Memory a model can use on the best GPU: its total (a Mac: a share of the RAM)."""
        gpu = self.best_gpu
        if gpu is None:
            return 0
        if self.is_apple_shared_memory:
            return int(self.ram_total_bytes * APPLE_GPU_SHARE)
        return gpu.total_bytes

    def summary_lines(self) -> list[str]:
        cores = f"{self.cpu_physical_cores} cores"
        if self.cpu_logical_cores > self.cpu_physical_cores:
            cores += f" ({self.cpu_logical_cores} threads)"
        lines = [
            f"Processor: {cores}",
            f"Memory: {_gib(self.ram_total_bytes)} ({_gib(self.ram_available_bytes)} free)",
        ]
        if not self.gpus:
            lines.append("GPU: no NVIDIA GPU found")
        for gpu in self.gpus:
            if gpu.name.startswith("Apple"):
                lines.append(f"GPU: {gpu.name}")
            else:
                lines.append(f"GPU: {gpu.name}, {_gib(gpu.total_bytes)} "
                             f"({_gib(gpu.free_bytes)} free)")
        return lines


@dataclass(frozen=True)
class Recommendation:
    tier: Tier
    models: tuple[CatalogueModel, ...]
    """Catalogue models that fit, best first; empty when only the bundled model fits."""
    reason: str
    notes: tuple[str, ...] = ()
    prefer_bundled: bool = False
    """True when the bundled small model is the sensible choice to start with."""

    @property
    def model(self) -> CatalogueModel | None:
        return self.models[0] if self.models else None


def detect_hardware(
    gpu_detector: Callable[[], GpuStatus] | None = None,
) -> HardwareInfo:
    """Look at this computer. Slow-ish (runs nvidia-smi, imports llama.cpp): call it off the
    GUI thread."""
    import psutil

    if gpu_detector is None:
        from ghostdesk.core.llm.gpu_probe import detect_gpus

        gpu_detector = detect_gpus
    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or logical
    vm = psutil.virtual_memory()
    try:
        status = gpu_detector()
    except Exception:  # detection is advice; a failure means "no GPU we can use"
        status = GpuStatus.cpu_only()
    return HardwareInfo(
        cpu_physical_cores=int(physical),
        cpu_logical_cores=int(logical),
        ram_total_bytes=int(vm.total),
        ram_available_bytes=int(vm.available),
        gpus=tuple(status.devices),
        gpu_offload_supported=status.backend_supports_gpu,
    )


def recommend(hw: HardwareInfo, catalogue: Catalogue) -> Recommendation:
    """Pick the catalogue tier and models for this machine, with the reason in words."""
    notes: list[str] = []
    gpu = hw.best_gpu
    if gpu is not None and not hw.gpu_offload_supported:
        notes.append(
            f"{gpu.name} was found, but this copy of GhostDesk runs llama.cpp without GPU "
            "support, so models run on the processor. Install the CUDA build of GhostDesk to "
            "use the GPU."
        )
        gpu = None
    if gpu is not None:
        budget = hw.gpu_budget_bytes()
        tier = catalogue.tier_for_vram(budget)
        if tier.min_vram_gib > 0:
            models = tuple(catalogue.models_in(tier.id))
            where = ("of memory the GPU can share" if hw.is_apple_shared_memory
                     else "of GPU memory")
            reason = f"{gpu.name} has {_gib(budget)} {where}. Suggested: {tier.description}"
            if not hw.is_apple_shared_memory and gpu.free_bytes < budget * 0.8:
                notes.append(
                    f"Only {_gib(gpu.free_bytes)} of the GPU's memory is free right now; "
                    "GPU layers Auto puts on it what fits and the rest on the processor."
                )
            return Recommendation(tier, models, reason, tuple(notes))
        notes.append(f"{gpu.name} has {_gib(gpu.total_bytes)}, less than the smallest GPU tier; "
                     "small models on the processor suit it better.")
    tier = catalogue.cpu_tier()
    ram_gib = hw.ram_total_bytes / GIB
    fitting = tuple(m for m in catalogue.models_in(tier.id) if m.min_ram_gib <= ram_gib
                    and m.size_bytes * 1.3 < hw.ram_total_bytes)
    if ram_gib < SMALL_RAM_GIB or not fitting:
        reason = (f"This computer has {_gib(hw.ram_total_bytes)} of memory and no usable GPU: "
                  "the small bundled model is the one that runs well here.")
        return Recommendation(tier, fitting, reason, tuple(notes), prefer_bundled=True)
    reason = (f"No usable GPU, {hw.cpu_physical_cores} processor cores and "
              f"{_gib(hw.ram_total_bytes)} of memory. Suggested: {tier.description} "
              "The bundled model works right away; a larger one answers better but more "
              "slowly.")
    return Recommendation(tier, fitting, reason, tuple(notes), prefer_bundled=True)


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB" if n < 100 * GIB else f"{n / GIB:.0f} GiB"


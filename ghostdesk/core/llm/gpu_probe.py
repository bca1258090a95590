"""Finds out whether llama.cpp can use a GPU here and how much memory each GPU has free."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

MIB = 1024 * 1024
NVIDIA_SMI_QUERY = ["--query-gpu=name,memory.free,memory.total", "--format=csv,noheader,nounits"]


class GpuDevice(NamedTuple):
    name: str
    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class GpuStatus:
    backend_supports_gpu: bool
    """Whether this llama.cpp build can offload layers at all (CUDA, Metal, Vulkan...)."""
    devices: list[GpuDevice] = field(default_factory=list)

    @staticmethod
    def cpu_only() -> GpuStatus:
        return GpuStatus(backend_supports_gpu=False, devices=[])


def parse_nvidia_smi(text: str) -> list[GpuDevice]:
    """Parse `nvidia-smi --query-gpu=name,memory.free,memory.total --format=csv,noheader,
    nounits` output (MiB). Lines that are not understood (e.g. "[N/A]") are skipped."""
    devices = []
    for line in text.splitlines():
        parts = line.rsplit(",", 2)  # the name comes first and could itself hold a comma
        if len(parts) != 3:
            continue
        name, free, total = (p.strip() for p in parts)
        try:
            free_mib, total_mib = float(free), float(total)
        except ValueError:
            continue
        devices.append(GpuDevice(name or "GPU", int(free_mib * MIB), int(total_mib * MIB)))
    return devices


def query_nvidia_smi(run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
                     ) -> list[GpuDevice]:
    """NVIDIA GPUs and their free memory, or [] when nvidia-smi is missing, fails or hangs.
    Uses the driver's own tool so no CUDA Python libraries are needed."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        done = run([exe, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=3,
                   check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else []


def backend_supports_gpu() -> bool:
    try:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:  # a broken install is reported when the model loads, not here
        return False


def _apple_unified_memory() -> list[GpuDevice]:
    # Metal shares system memory with the CPU, so the budget is what the system has free.
    import psutil

    vm = psutil.virtual_memory()
    return [GpuDevice("Apple GPU (Metal, shared memory)", int(vm.available), int(vm.total))]


def detect_gpus() -> GpuStatus:
    """What the offload planner needs: build support plus each GPU's free memory."""
    supports = backend_supports_gpu()
    devices = query_nvidia_smi()
    if not devices and supports and sys.platform == "darwin":
        devices = _apple_unified_memory()
    return GpuStatus(backend_supports_gpu=supports, devices=devices)

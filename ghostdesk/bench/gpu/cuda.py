"""Whether there is a CUDA device to measure, and the software versions, asked of PyTorch in a
child process: torch and a CUDA build of llama.cpp must not share one (a process that loads
both can crash; see docs/learning.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from ghostdesk.bench.gpu.options import NoCudaError

_TORCH_CUDA = (
    "import json, torch\n"
    "ok = torch.cuda.is_available()\n"
    "free, total = torch.cuda.mem_get_info(0) if ok else (0, 0)\n"
    "smi = []\n"
    "if ok:\n"
    "    try:\n"
    "        from ghostdesk.core.llm.gpu_probe import query_nvidia_smi\n"
    "        smi = [d.free_bytes for d in query_nvidia_smi()]\n"
    "    except Exception:\n"
    "        pass\n"
    "print(json.dumps({'version': torch.__version__, 'cuda': ok,\n"
    "                  'name': torch.cuda.get_device_name(0) if ok else '',\n"
    "                  'free': free, 'total': total, 'smi_free': smi[0] if smi else 0}))\n")
"""Asked in a child process; `smi_free` is the probe's reading taken while this process
holds its CUDA context, so it is comparable with torch's `free`."""


def torch_cuda_info() -> dict[str, Any]:
    """What PyTorch sees, asked in a separate process: torch and a CUDA build of llama.cpp
    must not share one (a process that loads both can crash; see docs/learning.md)."""
    try:
        done = subprocess.run([sys.executable, "-c", _TORCH_CUDA], capture_output=True,
                              text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as err:
        raise NoCudaError(f"Could not ask PyTorch about CUDA: {err}") from err
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise NoCudaError(f"The GPU benchmark needs PyTorch with CUDA ({last}).")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cuda_device_name(info: dict[str, Any] | None = None) -> str:
    """The first CUDA device's name; NoCudaError when there is none (or no torch)."""
    info = torch_cuda_info() if info is None else info
    if not info.get("cuda"):
        raise NoCudaError(
            "No CUDA GPU found (torch.cuda.is_available() is False): the GPU benchmark "
            "measures the NVIDIA paths and needs a CUDA device and a CUDA build of PyTorch "
            f"(this one is {info.get('version', '?')}).")
    return str(info.get("name") or "CUDA GPU")


def versions() -> dict[str, str]:
    """The installed versions of the libraries behind the figures (from the package
    metadata; nothing is imported)."""
    from importlib import metadata

    out = {}
    for name in ("torch", "transformers", "peft", "trl", "bitsandbytes", "llama_cpp_python"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out

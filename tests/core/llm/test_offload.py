"""GPU layer planning: pure arithmetic over model sizes and free VRAM, no GPU needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostdesk.core.llm.gguf_info import read_model_info
from ghostdesk.core.llm.gpu_probe import GpuDevice, GpuStatus
from ghostdesk.core.llm.offload import ModelFootprint, plan_offload

MIB = 1024 * 1024
GIB = 1024 * MIB
# 10 layers of 100 MiB, 1 KiB of KV cache per token per layer, a 50 MiB output layer. With
# n_ctx 4096 each layer costs 104 MiB; everything costs 1090 MiB.
MODEL = ModelFootprint(layer_bytes=(100 * MIB,) * 10, output_bytes=50 * MIB,
                       kv_bytes_per_token_layer=(1024,) * 10)


def gpu(*free_mib: int, supported: bool = True) -> GpuStatus:
    return GpuStatus(supported, [GpuDevice(f"GPU{i}", f * MIB, 2 * f * MIB + GIB)
                                 for i, f in enumerate(free_mib)])


CASES = [
    # id, gpu, requested, n_gpu_layers, fallback, words in the reason
    ("big GPU: everything", gpu(24 * 1024), "auto", 11, False,
     ["All 11 layers fit on the GPU", "about 1090 MiB", "24576 MiB free",
      "2458 MiB kept spare"]),
    ("partial fit", gpu(1000), "auto", 4, False,
     ["4 of 11 layers fit on the GPU", "about 416 MiB", "512 MiB kept spare",
      "the rest runs on the CPU"]),
    ("nothing fits", gpu(600), "auto", 0, True,
     ["Not even one layer fits", "600 MiB free", "about 104 MiB", "running on CPU"]),
    ("no GPU support in the build", gpu(24 * 1024, supported=False), "auto", 0, True,
     ["This llama.cpp build has no GPU support, so GPU0 is not used; running on CPU."]),
    ("no support, no device", GpuStatus(False, []), "auto", 0, True,
     ["This llama.cpp build has no GPU support; running on CPU."]),
    ("no device found", GpuStatus(True, []), "auto", 0, True, ["No GPU", "running on CPU"]),
    ("explicit number", gpu(100), 5, 5, False, ["5 of 11 layers on the GPU, as set by you"]),
    ("explicit number as text", gpu(100), "5", 5, False, ["as set by you"]),
    ("explicit -1 means all", gpu(100), -1, 11, False, ["All 11 layers", "set by you"]),
    ("explicit beyond the model", gpu(100), 99, 11, False, ["All 11 layers"]),
    ("explicit 0", gpu(24 * 1024), 0, 0, False, ["CPU only", "set to 0 by you"]),
    ("explicit without GPU support", GpuStatus(False, []), 7, 0, True,
     ["set to 7 by you", "no GPU support"]),
    # Two GPUs: the free memory is summed (llama.cpp splits layers over both), and the
    # margin is kept on each: 2 * (700 - 512) = 376 MiB -> 3 layers.
    ("two GPUs share the layers", gpu(700, 700), "auto", 3, False, ["3 of 11 layers"]),
]


@pytest.mark.parametrize(("gpu_status", "requested", "layers", "fallback", "words"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan(gpu_status: GpuStatus, requested: str | int, layers: int, fallback: bool,
              words: list[str]) -> None:
    plan = plan_offload(MODEL, 4096, requested, gpu_status)
    assert plan.n_gpu_layers == layers
    assert plan.fallback_to_cpu is fallback
    for w in words:
        assert w in plan.reason
    if layers:
        assert plan.device_summary.startswith(f"GPU: {layers}/11 layers (")
    else:
        assert plan.device_summary == "CPU"


def test_device_summary_names_the_gpu() -> None:
    plan = plan_offload(MODEL, 4096, "auto", GpuStatus(True, [
        GpuDevice("NVIDIA GeForce RTX 3060", 12 * GIB, 12 * GIB)]))
    assert plan.device_summary == "GPU: 11/11 layers (NVIDIA GeForce RTX 3060)"
    two = plan_offload(MODEL, 4096, "auto", GpuStatus(True, [GpuDevice("A", GIB, GIB)] * 2))
    assert two.device_summary.endswith("(2× A)")


def test_a_longer_context_leaves_room_for_fewer_layers() -> None:
    short = plan_offload(MODEL, 1024, "auto", gpu(1000))
    long = plan_offload(MODEL, 65536, "auto", gpu(1000))
    assert short.n_gpu_layers == 4  # 101 MiB per layer, 488 MiB budget
    assert long.n_gpu_layers == 2  # 164 MiB per layer


def test_everything_but_the_output_layer() -> None:
    # Room for all 10 repeating layers (1040 MiB) but not the 50 MiB output as well.
    plan = plan_offload(MODEL, 4096, "auto", gpu(512 + 1060))
    assert plan.n_gpu_layers == 10


def test_model_without_layer_count() -> None:
    empty = ModelFootprint(layer_bytes=(), output_bytes=0, kv_bytes_per_token_layer=())
    plan = plan_offload(empty, 4096, "auto", gpu(8000))
    assert plan.n_gpu_layers == 0 and plan.fallback_to_cpu


def test_real_model_info_is_a_footprint(model_path: Path) -> None:
    info = read_model_info(model_path)
    assert plan_offload(info, 4096, "auto", gpu(8 * 1024)).n_gpu_layers == 19
    # 512 MiB margin + 60 MiB: a handful of its ~4 MiB layers, not the 170 MiB output.
    partial = plan_offload(info, 4096, "auto", gpu(512 + 60))
    assert 0 < partial.n_gpu_layers < 18

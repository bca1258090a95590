"""Hardware detection and the model recommendation it leads to."""

from __future__ import annotations

from ghostdesk.core.llm.gpu_probe import GpuDevice, GpuStatus
from ghostdesk.core.models.catalogue import GIB, load_catalogue
from ghostdesk.core.setup.hardware import HardwareInfo, detect_hardware, recommend


def machine(ram_gib=32, gpus=(), offload=True, cores=8):
    return HardwareInfo(cpu_physical_cores=cores, cpu_logical_cores=cores * 2,
                        ram_total_bytes=int(ram_gib * GIB),
                        ram_available_bytes=int(ram_gib * GIB / 2),
                        gpus=tuple(gpus), gpu_offload_supported=offload, system="Linux")


def gpu(total_gib, free_gib=None, name="NVIDIA GeForce RTX 4090"):
    free = total_gib if free_gib is None else free_gib
    return GpuDevice(name, int(free * GIB), int(total_gib * GIB))


def test_detection_reads_cores_memory_and_the_gpu_probe():
    hw = detect_hardware(lambda: GpuStatus(True, [gpu(24, 20)]))
    assert hw.cpu_physical_cores >= 1 and hw.cpu_logical_cores >= hw.cpu_physical_cores
    assert hw.ram_total_bytes > hw.ram_available_bytes > 0
    assert hw.best_gpu.name == "NVIDIA GeForce RTX 4090" and hw.gpu_offload_supported
    assert any("24.0 GiB (20.0 GiB free)" in line for line in hw.summary_lines())


def test_a_failing_gpu_probe_means_no_gpu():
    def boom():
        raise RuntimeError("driver exploded")

    hw = detect_hardware(boom)
    assert hw.gpus == () and "no NVIDIA GPU" in " ".join(hw.summary_lines())


def test_a_24gb_gpu_gets_a_20_to_34b_model():
    rec = recommend(machine(gpus=[gpu(24, 23)]), load_catalogue())
    assert rec.tier.id == "gpu-24gb" and not rec.prefer_bundled
    assert rec.model.params_billion >= 20
    assert "RTX 4090 has 24.0 GiB of GPU memory" in rec.reason and rec.notes == ()


def test_an_8gb_gpu_gets_a_7_to_8b_model_and_a_busy_gpu_is_mentioned():
    rec = recommend(machine(gpus=[gpu(8, 3, "NVIDIA GeForce RTX 3070")]), load_catalogue())
    assert rec.tier.id == "gpu-8gb" and 7 <= rec.model.params_billion <= 8
    assert any("Only 3.0 GiB" in n for n in rec.notes)


def test_the_largest_of_several_gpus_decides():
    rec = recommend(machine(gpus=[gpu(8), gpu(12, name="RTX 3060")]), load_catalogue())
    assert rec.tier.id == "gpu-12gb"


def test_a_gpu_the_llama_build_cannot_use_falls_back_to_the_processor_and_says_so():
    rec = recommend(machine(gpus=[gpu(24)], offload=False), load_catalogue())
    assert rec.tier.id == "cpu" and rec.prefer_bundled
    assert "without GPU support" in rec.notes[0] and "CUDA build" in rec.notes[0]


def test_no_gpu_suggests_small_models_and_the_bundled_one_first():
    rec = recommend(machine(ram_gib=16), load_catalogue())
    assert rec.tier.id == "cpu" and rec.prefer_bundled
    assert rec.model.params_billion <= 4
    assert "No usable GPU" in rec.reason


def test_little_memory_leaves_only_the_models_that_fit():
    rec = recommend(machine(ram_gib=5), load_catalogue())
    assert all(m.min_ram_gib <= 5 for m in rec.models)
    assert recommend(machine(ram_gib=2), load_catalogue()).models == ()


def test_a_small_gpu_is_explained():
    rec = recommend(machine(gpus=[gpu(4, name="NVIDIA T400")]), load_catalogue())
    assert rec.tier.id == "cpu" and "less than the smallest GPU tier" in rec.notes[0]


def test_a_mac_uses_a_share_of_unified_memory():
    apple = GpuDevice("Apple GPU (Metal, shared memory)", int(40 * GIB), int(64 * GIB))
    rec = recommend(machine(ram_gib=64, gpus=[apple]), load_catalogue())
    assert rec.tier.id == "gpu-24gb" and "memory the GPU can share" in rec.reason

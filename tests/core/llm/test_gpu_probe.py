"""GPU detection: nvidia-smi output parsing and every way the tool can fail."""

from __future__ import annotations

import subprocess

import pytest

from ghostdesk.core.llm import gpu_probe
from ghostdesk.core.llm.gpu_probe import (
    GpuDevice,
    GpuStatus,
    detect_gpus,
    parse_nvidia_smi,
    query_nvidia_smi,
)

MIB = 1024 * 1024
TWO_GPUS = "NVIDIA GeForce RTX 3060, 11826, 12288\nNVIDIA H100 80GB HBM3, 80000, 81559\n"


def test_parse_two_gpus() -> None:
    assert parse_nvidia_smi(TWO_GPUS) == [
        GpuDevice("NVIDIA GeForce RTX 3060", 11826 * MIB, 12288 * MIB),
        GpuDevice("NVIDIA H100 80GB HBM3", 80000 * MIB, 81559 * MIB),
    ]


def test_parse_skips_what_it_does_not_understand() -> None:
    text = "GPU A, [N/A], [N/A]\n\nNo devices were found\nGPU, with comma, 10, 20\n"
    assert parse_nvidia_smi(text) == [GpuDevice("GPU, with comma", 10 * MIB, 20 * MIB)]
    assert parse_nvidia_smi("") == []


@pytest.fixture
def fake_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_probe.shutil, "which", lambda name: "/usr/bin/nvidia-smi")


def test_query_success(fake_smi: None) -> None:
    def run(cmd, **kw):
        assert cmd[0] == "/usr/bin/nvidia-smi" and kw["timeout"] == 3
        return subprocess.CompletedProcess(cmd, 0, TWO_GPUS, "")

    assert len(query_nvidia_smi(run)) == 2


@pytest.mark.parametrize("failure", [
    subprocess.TimeoutExpired("nvidia-smi", 3), FileNotFoundError("gone"),
    PermissionError("no"), "rc9",
])
def test_query_failures_mean_no_devices(fake_smi: None, failure: object) -> None:
    def run(cmd, **kw):
        if failure == "rc9":
            return subprocess.CompletedProcess(cmd, 9, "", "NVIDIA-SMI has failed")
        raise failure  # type: ignore[misc]

    assert query_nvidia_smi(run) == []


def test_query_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_probe.shutil, "which", lambda name: None)
    assert query_nvidia_smi() == []


def test_detect_gpus_combines_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_probe, "query_nvidia_smi", lambda: parse_nvidia_smi(TWO_GPUS))
    monkeypatch.setattr(gpu_probe, "backend_supports_gpu", lambda: True)
    status = detect_gpus()
    assert status.backend_supports_gpu and len(status.devices) == 2


def test_detect_gpus_on_this_machine() -> None:
    status = detect_gpus()
    assert isinstance(status, GpuStatus)
    assert isinstance(status.backend_supports_gpu, bool)

"""What a GPU benchmark run is asked to do (`Options`, the `STAGES` in their order) and what it
found (`Results`), its two errors, and its progress lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STAGES = ("probe", "offload", "train", "autofit", "adapter")
MIB = 1024 * 1024


class NoCudaError(RuntimeError):
    """No CUDA device: the benchmark has nothing to measure here."""


class GpuBenchError(RuntimeError):
    """A stage could not run (a missing input, a failed load or training run)."""


@dataclass
class Options:
    """Everything a run needs; the command-line flags map onto these fields."""

    chat_model: str = ""
    """GGUF for the offload stage; empty: the bundled model."""
    large_model: str = ""
    """GGUF for the train (as the chat model), autofit and adapter stages."""
    hf_base: str = ""
    """Hugging Face folder of the large model (the 4-bit training base)."""
    adapter: str = ""
    """An adapter GGUF for the adapter stage when the train stage does not run."""
    stages: tuple[str, ...] = STAGES
    tokens: int = 128
    runs: int = 3
    n_ctx: int = 4096
    threads: int = 0
    train_steps: int = 8
    train_examples: int = 32
    vram_budget_mib: int = 0
    """Free VRAM the autofit stage pretends the GPU has; 0: half of what the model needs."""
    work: str = ""


@dataclass
class Results:
    gpu: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)
    offload: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    autofit: dict[str, Any] = field(default_factory=dict)
    adapter: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def say(progress: Callable[[str], None] | None, text: str) -> None:
    """Report a step of the run when someone listens."""
    if progress is not None:
        progress(text)

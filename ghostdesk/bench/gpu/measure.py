"""The GPU benchmark's measuring tools: one timed greedy reply through the app's engine, the
median decode rate, VRAM in use (nvidia-smi, sampled on a thread), and the VRAM the offload
planner counts for a number of GPU layers."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ghostdesk.bench.decode_runs import decode_rate


@dataclass
class DecodeRun:
    tokens: int
    seconds: float
    first_token_s: float
    text: str

    @property
    def decode_tps(self) -> float:
        """Tokens per second after the first token (the steady decode rate)."""
        return decode_rate(self.tokens, self.first_token_s, self.seconds)


def decode_once(engine: Any, prompt: Any, tokens: int) -> DecodeRun:
    """One greedy reply through `LlamaEngine.stream`, the chat's own path. The cached prompt
    is dropped first, so every run evaluates the whole prompt the same way (llama-cpp-python
    would otherwise reuse it, and a prompt evaluated in a different batch shape can round
    differently on a GPU and turn a near tie in a greedy choice the other way)."""
    from ghostdesk.core.llm.types import GenerationStats, SamplingParams

    engine.reset()
    stats = GenerationStats()
    text = "".join(engine.stream(prompt, SamplingParams.greedy(tokens), stats))
    return DecodeRun(stats.completion_tokens, stats.seconds,
                     stats.first_token_seconds or stats.seconds, text)


def median_tps(runs: Sequence[DecodeRun]) -> float:
    rates = [r.decode_tps for r in runs if r.decode_tps > 0]
    return statistics.median(rates) if rates else 0.0


def vram_used_bytes() -> int:
    """GPU memory in use on all devices, by nvidia-smi (the app's probe); 0 without it."""
    from ghostdesk.core.llm.gpu_probe import query_nvidia_smi

    return sum(d.total_bytes - d.free_bytes for d in query_nvidia_smi())


class VramSampler:
    """Samples nvidia-smi's used memory on a thread; `peak` is the highest reading."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            used = vram_used_bytes()
            self.peak = max(self.peak, used)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> VramSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def planned_gpu_bytes(info: Any, n_ctx: int, n_gpu_layers: int) -> int:
    """What offload.plan_offload counts for `n_gpu_layers`: the last k blocks with their KV
    cache, plus the output layer when k = n_layers + 1."""
    n = int(info.n_layers)
    k = min(max(0, n_gpu_layers), n + 1)
    kv = list(info.kv_bytes_per_token_layer) or [0] * n
    costs = [int(b) + int(kv[i] if i < len(kv) else 0) * n_ctx
             for i, b in enumerate(info.layer_bytes)]
    blocks = costs[n - min(k, n):] if k else []
    return sum(blocks) + (int(info.output_bytes) if k == n + 1 else 0)

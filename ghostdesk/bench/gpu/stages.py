"""The GPU benchmark's stages that run llama.cpp: the probe (nvidia-smi against torch), offload
(Auto GPU layers against the CPU), autofit (Auto under a smaller VRAM budget) and adapter
(decode with a hot-swapped adapter, and the base reply back after it). Each returns its
figures as a dict for `Results`."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from ghostdesk.bench.decode_runs import PROMPT, alternate
from ghostdesk.bench.gpu.cuda import torch_cuda_info
from ghostdesk.bench.gpu.measure import (
    DecodeRun,
    decode_once,
    median_tps,
    planned_gpu_bytes,
    vram_used_bytes,
)
from ghostdesk.bench.gpu.options import MIB, Options

SYSTEM = "You are Ghost, a warm and curious companion."


def probe_stage() -> dict[str, Any]:
    from ghostdesk.core.llm.gpu_probe import backend_supports_gpu, query_nvidia_smi

    smi = query_nvidia_smi()
    torch_info = torch_cuda_info()
    free, total = torch_info["free"], torch_info["total"]
    first = smi[0] if smi else None
    return {
        "nvidia_smi_devices": len(smi),
        "nvidia_smi_name": first.name if first else "",
        "nvidia_smi_free": first.free_bytes if first else 0,
        "nvidia_smi_total": first.total_bytes if first else 0,
        "torch_free": int(free), "torch_total": int(total),
        "nvidia_smi_free_same_time": int(torch_info.get("smi_free") or 0),
        "backend_supports_gpu": backend_supports_gpu(),
    }


def _load(path: str | Path, n_ctx: int, layers: str | int, threads: int, cache: Path,
          gpu: Any = None) -> tuple[Any, float, int]:
    """(engine, seconds, VRAM taken by the load according to nvidia-smi)."""
    from ghostdesk.core.llm.engine import LlamaEngine
    from ghostdesk.core.settings import ModelSettings

    before = vram_used_bytes()
    t = time.perf_counter()
    engine = LlamaEngine.load(ModelSettings(path=str(path), n_ctx=n_ctx, n_gpu_layers=layers,
                                            n_threads=threads), cache_dir=cache, gpu=gpu)
    return engine, time.perf_counter() - t, vram_used_bytes() - before


def _prompt(engine: Any) -> Any:
    from ghostdesk.core.llm.types import ChatMessage

    return engine.render([ChatMessage("system", SYSTEM), ChatMessage("user", PROMPT)])


def offload_stage(model: str | Path, opts: Options, cache: Path) -> dict[str, Any]:
    from ghostdesk.core.llm.gpu_probe import detect_gpus

    status = detect_gpus()
    gpu, gpu_s, gpu_vram = _load(model, opts.n_ctx, "auto", opts.threads, cache)
    try:
        info = gpu.info
        out: dict[str, Any] = {
            "model": Path(model).name, "model_bytes": gpu.model_info.file_size,
            "probe_devices": [d._asdict() for d in status.devices],
            "n_layers": info.n_layers, "n_gpu_layers": info.n_gpu_layers, "n_ctx": info.n_ctx,
            "all_layers": info.n_gpu_layers == info.n_layers + 1,
            "device_summary": info.device_summary, "offload_reason": info.offload_reason,
            "fallback_to_cpu": bool(gpu.plan and gpu.plan.fallback_to_cpu),
            "planned_bytes": planned_gpu_bytes(gpu.model_info, info.n_ctx, info.n_gpu_layers),
            "vram_taken": gpu_vram, "load_s_gpu": gpu_s, "threads": info.extra["n_threads"],
        }
        cpu, cpu_s, _ = _load(model, opts.n_ctx, 0, opts.threads, cache)
        try:
            prompt = _prompt(gpu)
            decode_once(gpu, prompt, 8)  # warm both (first-call allocations, page cache)
            decode_once(cpu, prompt, 8)
            on_gpu, on_cpu = alternate(opts.runs, lambda: decode_once(gpu, prompt, opts.tokens),
                                       lambda: decode_once(cpu, prompt, opts.tokens))
        finally:
            cpu.close()
        out.update(load_s_cpu=cpu_s, gpu_tps=median_tps(on_gpu), cpu_tps=median_tps(on_cpu),
                   tokens_each=[r.tokens for r in on_gpu],
                   same_text=all(a.text == b.text for a, b in zip(on_gpu, on_cpu, strict=True)))
        return out
    finally:
        gpu.close()


def autofit_stage(model: str | Path, opts: Options, cache: Path) -> dict[str, Any]:
    from ghostdesk.core.llm.gguf_info import read_model_info
    from ghostdesk.core.llm.gpu_probe import GpuDevice, GpuStatus, detect_gpus
    from ghostdesk.core.llm.offload import plan_offload

    info = read_model_info(model)
    n_ctx = min(opts.n_ctx, info.context_length or opts.n_ctx)
    real = detect_gpus()
    full_plan = plan_offload(info, n_ctx, "auto", real)
    everything = planned_gpu_bytes(info, n_ctx, info.n_layers + 1)
    budget = opts.vram_budget_mib * MIB if opts.vram_budget_mib else everything // 2
    first = real.devices[0]
    pretend = GpuStatus(backend_supports_gpu=real.backend_supports_gpu,
                        devices=[GpuDevice(first.name, int(budget), first.total_bytes)])
    plan = plan_offload(info, n_ctx, "auto", pretend)
    engine, load_s, taken = _load(model, n_ctx, "auto", opts.threads, cache, gpu=pretend)
    try:
        prompt = _prompt(engine)
        decode_once(engine, prompt, 4)
        split = [decode_once(engine, prompt, min(opts.tokens, 64)) for _ in range(2)]
        return {
            "model": Path(model).name, "model_bytes": info.file_size, "n_ctx": n_ctx,
            "n_layers": info.n_layers, "whole_model_bytes": everything,
            "real_plan_layers": full_plan.n_gpu_layers, "real_plan_reason": full_plan.reason,
            "budget_free_bytes": int(budget), "plan_layers": plan.n_gpu_layers,
            "plan_reason": plan.reason, "loaded_layers": engine.info.n_gpu_layers,
            "planned_bytes": planned_gpu_bytes(info, n_ctx, plan.n_gpu_layers),
            "vram_taken": taken, "load_s": load_s, "split_tps": median_tps(split),
        }
    finally:
        engine.close()


def adapter_stage(model: str | Path, adapter: str | Path, opts: Options,
                  cache: Path) -> dict[str, Any]:
    from ghostdesk.core.llm.adapters import AdapterSlot
    from ghostdesk.core.llm.fingerprint import model_sha256

    engine, load_s, taken = _load(model, opts.n_ctx, "auto", opts.threads, cache)
    slot = AdapterSlot(engine, model_sha256=lambda: model_sha256(model, cache))
    try:
        prompt = _prompt(engine)
        activate_ms: list[float] = []

        def with_adapter() -> DecodeRun:
            activate_ms.append(slot.activate(adapter).seconds * 1000)
            try:
                return decode_once(engine, prompt, opts.tokens)
            finally:
                slot.deactivate()

        base_first = decode_once(engine, prompt, opts.tokens)  # warm-up and reference
        on, off = alternate(opts.runs, with_adapter,
                            lambda: decode_once(engine, prompt, opts.tokens))
        return {
            "model": Path(model).name, "n_gpu_layers": engine.info.n_gpu_layers,
            "n_layers": engine.info.n_layers, "device_summary": engine.info.device_summary,
            "load_s": load_s, "vram_taken": taken, "adapter": Path(adapter).name,
            "adapter_bytes": Path(adapter).stat().st_size,
            "on_tps": median_tps(on), "off_tps": median_tps(off),
            "activate_ms": statistics.median(activate_ms),
            "tokens_each": [r.tokens for r in off],
            "adapter_changes_reply": any(r.text != base_first.text for r in on),
            "base_reply_restored": all(r.text == base_first.text for r in off),
        }
    finally:
        slot.close()
        engine.close()

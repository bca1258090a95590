"""The GPU benchmark's train stage: a short KTO run of the app's training child on a Hugging
Face folder in 4 bits (QLoRA), with training tokens/s, peak VRAM (torch's allocator inside
the child, nvidia-smi from outside) and the adapter GGUF the job writes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ghostdesk.bench.gpu.measure import VramSampler, vram_used_bytes
from ghostdesk.bench.gpu.options import GpuBenchError, Options, say

# Imported by the training child (through PYTHONPATH) to report the peak of torch's CUDA
# allocator when it exits; the child itself is the app's, started the app's way.
_PEAK_HOOK = '''\
import atexit, json, os, sys

def _ghostdesk_bench_vram():
    path = os.environ.get("GHOSTDESK_BENCH_VRAM_FILE")
    torch = sys.modules.get("torch")
    if not path or torch is None:
        return
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            with open(path, "w", encoding="utf-8") as fh:
                json.dump({"max_allocated": torch.cuda.max_memory_allocated(),
                           "max_reserved": torch.cuda.max_memory_reserved()}, fh)
    except Exception:
        pass

atexit.register(_ghostdesk_bench_vram)
'''


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def train_stage(chat_model: str | Path, hf_base: str | Path, opts: Options, work: Path, *,
                device: str = "cuda", load_in_4bit: bool | None = True,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """A KTO run of the app's training child on `hf_base`, for `chat_model`."""
    from ghostdesk.bench.learning import synthetic_kto_records
    from ghostdesk.core.training.events import Evaluated, Failed, Finished, Saved, Started, Step
    from ghostdesk.core.training.launcher import TrainingProcess
    from ghostdesk.core.training.run_config import build_run_config

    home = work / "home"
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    train = _write_jsonl(data / "train.jsonl", synthetic_kto_records(opts.train_examples))
    held = _write_jsonl(data / "eval.jsonl", synthetic_kto_records(8, seed=1, offset=20))
    overrides: dict[str, Any] = {"max_steps": opts.train_steps, "eval_max_examples": 8,
                                 "eval_generations": 1, "generation_max_tokens": 16,
                                 "checkpoint_every": 10_000, "load_in_4bit": load_in_4bit}
    if opts.threads:
        overrides["threads"] = opts.threads
    cfg = build_run_config(method="kto", train_file=train, eval_file=held,
                           chat_model=chat_model, home=home, n_train=opts.train_examples,
                           device=device, base=str(hf_base), adopt="never",
                           overrides=overrides)
    hook = work / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(_PEAK_HOOK, encoding="utf-8")
    peak_file = work / "vram-peak.json"
    peak_file.unlink(missing_ok=True)
    env = {"GHOSTDESK_BENCH_VRAM_FILE": str(peak_file),
           "PYTHONPATH": os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH"))
                                         if p)}
    out: dict[str, Any] = {"preset": cfg.preset, "batch_size": cfg.batch_size,
                           "grad_accum": cfg.grad_accum, "max_length": cfg.max_length,
                           "lora_r": cfg.lora_r, "steps": cfg.max_steps,
                           "train_examples": opts.train_examples, "step_tps": []}
    baseline = vram_used_bytes()
    wall = time.perf_counter()
    with VramSampler() as sampler, TrainingProcess.start(cfg, env=env) as proc:
        for event in proc.events():
            if isinstance(event, Started):
                out.update(device=event.device, base=event.base,
                           load_in_4bit=event.load_in_4bit,
                           chat_tokens_checked=event.chat_tokens_checked,
                           chat_tokens_match=event.chat_tokens_match,
                           setup_s=time.perf_counter() - wall)
                say(progress, f"training started ({event.device}, 4-bit: "
                               f"{event.load_in_4bit})")
            elif isinstance(event, Step):
                out["step_tps"].append(event.tokens_per_second)
                say(progress, f"step {event.step}/{event.max_steps} loss {event.loss:.3f} "
                               f"{event.tokens_per_second:.0f} tokens/s")
            elif isinstance(event, Evaluated):
                out.update(accuracy=event.accuracy, reward_margin=event.reward_margin)
            elif isinstance(event, Saved):
                out.update(adapter_gguf=event.gguf, adapter_id=event.adapter_id)
            elif isinstance(event, Finished):
                out.update(status=event.status, tokens=event.tokens,
                           train_seconds=event.train_seconds,
                           tokens_per_second=event.tokens_per_second,
                           peak_rss_mb=event.peak_rss_mb, wall_s=event.seconds)
            elif isinstance(event, Failed):
                raise GpuBenchError(f"the training run failed: {event.reason} ({event.hint})"
                                    f"\n{event.detail}")
    out["vram_peak_smi"] = max(0, sampler.peak - baseline)
    out["vram_samples"] = sampler.samples
    try:
        peak = json.loads(peak_file.read_text(encoding="utf-8"))
        out["vram_peak_torch"] = int(peak["max_allocated"])
        out["vram_reserved_torch"] = int(peak["max_reserved"])
    except (OSError, ValueError, KeyError):
        out["vram_peak_torch"] = 0
    out["home"] = str(home)
    return out

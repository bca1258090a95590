"""`ghostdesk bench gpu`: the NVIDIA (CUDA) paths, run and measured on a GPU.

Also `python -m ghostdesk.bench.gpu`. Every stage goes through the app's own code:

1. probe: the nvidia-smi probe (`gpu_probe.query_nvidia_smi`) against
   `torch.cuda.mem_get_info`, and whether the llama.cpp build can offload.
2. offload: the chat model (default: the bundled one) loaded by `LlamaEngine.load` with GPU
   layers "auto" (`detect_gpus` + `plan_offload`): the layers put on the GPU, the reason the
   user is shown, the VRAM the load took against the plan's estimate, and greedy decode
   tokens/s on the GPU against a CPU-only load of the same file (alternating runs).
3. train: a short KTO run of the training child (`python -m ghostdesk.core.training
   run.json`, started by `TrainingProcess`) on a Hugging Face folder in 4 bits (QLoRA:
   bitsandbytes NF4, gradient checkpointing): training tokens/s, peak VRAM (torch's
   allocator inside the child, and nvidia-smi sampled from outside), the adapter GGUF the
   job writes.
4. autofit: the large GGUF with Auto GPU layers under a VRAM budget smaller than it needs
   (the probe's device with less free memory): the layers the plan keeps on the GPU, the
   VRAM the load really took, decode tokens/s of the split model.
5. adapter: the trained adapter hot-swapped (`AdapterSlot`) into the large GGUF on the GPU:
   decode tokens/s with and without it, alternating in one process, and the base reply
   coming back byte for byte after `deactivate()`.

Without a model download, `--make-random-base` writes a Llama-2-7B-shaped model with random
weights (bf16 safetensors) and `--converter` turns it into the q8_0 GGUF the chat runs (with
llama.cpp's `convert_hf_to_gguf.py`); the figures are then about speed and memory, not about
what the model says. Heavy libraries are imported only when a stage needs them, and torch
never in this process (it is asked in child processes): with the CUDA build of llama.cpp
tested, a process holding torch crashed at its first model load. Without a CUDA device the
benchmark refuses to start.

`main(argv, prog=...)` is the command line; `run_gpu_bench(Options(...))` returns the
BenchReport (printed as a Markdown table, appended to a file with `--record`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ghostdesk.bench.report import BenchReport

STAGES = ("probe", "offload", "train", "autofit", "adapter")
MIB = 1024 * 1024
PROG = "python -m ghostdesk.bench.gpu"
PROMPT = "Tell me a long, cosy story about a lighthouse keeper and her cat."
SYSTEM = "You are Ghost, a warm and curious companion."

# Shapes for --make-random-base: (hidden, layers, heads, kv heads, intermediate).
SHAPES: dict[str, tuple[int, int, int, int, int]] = {
    "7b": (4096, 32, 32, 32, 11008),  # Llama 2 7B
    "tiny": (64, 2, 4, 4, 172),  # for trying the pipeline out
}

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


class NoCudaError(RuntimeError):
    """No CUDA device: the benchmark has nothing to measure here."""


class GpuBenchError(RuntimeError):
    """A stage could not run (a missing input, a failed load or training run)."""


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


# --- small measuring tools --------------------------------------------------------------

@dataclass
class DecodeRun:
    tokens: int
    seconds: float
    first_token_s: float
    text: str

    @property
    def decode_tps(self) -> float:
        """Tokens per second after the first token (the steady decode rate)."""
        span = self.seconds - self.first_token_s
        return (self.tokens - 1) / span if self.tokens > 1 and span > 0 else 0.0


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


def alternate(runs: int, a: Callable[[], DecodeRun], b: Callable[[], DecodeRun],
              ) -> tuple[list[DecodeRun], list[DecodeRun]]:
    """ABBA order: a slow spell of the machine hits both sides alike."""
    out_a: list[DecodeRun] = []
    out_b: list[DecodeRun] = []
    for i in range(runs):
        for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
            if side == "a":
                out_a.append(a())
            else:
                out_b.append(b())
    return out_a, out_b


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


def _mib(n: float) -> str:
    return f"{n / MIB:,.0f} MiB"


def _say(progress: Callable[[str], None] | None, text: str) -> None:
    if progress is not None:
        progress(text)


# --- preparing a model without a download ----------------------------------------------

def make_random_llama(dest: str | Path, tokenizer: str | Path, *, shape: str = "7b",
                      seed: int = 0, device: str = "cuda") -> Path:
    """A Llama model of the given shape with random weights, saved as bf16 safetensors with
    the tokenizer from `tokenizer` (a folder AutoTokenizer reads). Skipped when `dest`
    already holds a config.json."""
    dest = Path(dest)
    if (dest / "config.json").is_file():
        return dest
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    hidden, layers, heads, kv_heads, inter = SHAPES[shape]
    tok = AutoTokenizer.from_pretrained(str(tokenizer))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=inter,
                      num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv_heads, max_position_embeddings=4096,
                      rms_norm_eps=1e-5, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(previous)
    partial = dest.with_name(dest.name + ".partial")
    model.save_pretrained(partial, max_shard_size="5GB")
    tok.save_pretrained(partial)
    del model
    os.replace(partial, dest)
    return dest


def convert_to_gguf(hf_dir: str | Path, out: str | Path, converter: str | Path, *,
                    outtype: str = "q8_0") -> Path:
    """llama.cpp's convert_hf_to_gguf.py, run with this interpreter."""
    out = Path(out)
    if out.is_file():
        return out
    tmp = out.with_name(out.name + ".partial")
    done = subprocess.run([sys.executable, str(converter), str(hf_dir), "--outtype", outtype,
                           "--outfile", str(tmp)], capture_output=True, text=True)
    if done.returncode != 0:
        raise GpuBenchError(f"convert_hf_to_gguf.py failed:\n{done.stderr[-3000:]}")
    os.replace(tmp, out)
    return out


# --- the stages ---------------------------------------------------------------------------

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


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("torch", "transformers", "peft", "trl", "bitsandbytes", "llama_cpp_python"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


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
                _say(progress, f"training started ({event.device}, 4-bit: "
                               f"{event.load_in_4bit})")
            elif isinstance(event, Step):
                out["step_tps"].append(event.tokens_per_second)
                _say(progress, f"step {event.step}/{event.max_steps} loss {event.loss:.3f} "
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


# --- the whole run -------------------------------------------------------------------------

def _load_llama_first() -> None:
    """Load llama.cpp's libraries before anything imports numpy. With the CUDA build tested
    (llama-cpp-python 0.3.36 from source, CUDA 13.0, gcc 13), a process that had imported
    numpy first, or torch at any point, crashed in libggml-cuda at the first GPU load."""
    with contextlib.suppress(Exception):  # a broken build is reported by its stage
        importlib.import_module("llama_cpp")


def run_gpu_bench(opts: Options, *, command: str = "",
                  progress: Callable[[str], None] | None = None) -> BenchReport:
    """Run the chosen stages and return the report. Raises NoCudaError without a CUDA
    device; a stage whose inputs are missing is skipped, with the reason in the report."""
    gpu_name = cuda_device_name()
    _load_llama_first()
    res = Results(gpu=gpu_name, versions=versions())
    work = Path(opts.work or tempfile.mkdtemp(prefix="ghostdesk-bench-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    cache.mkdir(exist_ok=True)
    wanted = set(opts.stages)
    adapter = opts.adapter

    if "probe" in wanted:
        _say(progress, "probe: nvidia-smi against torch")
        res.probe = probe_stage()
    if "offload" in wanted:
        model = opts.chat_model
        if not model:
            from ghostdesk.core.llm.bundled import bundled_model_path

            model = str(bundled_model_path())
        _say(progress, f"offload: {Path(model).name}, Auto GPU layers vs CPU")
        res.offload = offload_stage(model, opts, cache)
    if "train" in wanted:
        if not (opts.large_model and opts.hf_base):
            res.skipped["train"] = "needs --large-model and --hf-base"
        else:
            _say(progress, f"train: 4-bit KTO on {Path(opts.hf_base).name}")
            res.train = train_stage(opts.large_model, opts.hf_base, opts, work,
                                    progress=progress)
            adapter = res.train.get("adapter_gguf", "") or adapter
    if "autofit" in wanted:
        if not opts.large_model:
            res.skipped["autofit"] = "needs --large-model"
        else:
            _say(progress, f"autofit: {Path(opts.large_model).name} under a smaller budget")
            res.autofit = autofit_stage(opts.large_model, opts, cache)
    if "adapter" in wanted:
        target = opts.large_model or opts.chat_model
        if not (target and adapter):
            res.skipped["adapter"] = "needs --large-model (or --chat-model) and an adapter"
        else:
            _say(progress, f"adapter: {Path(adapter).name} on {Path(target).name}")
            res.adapter = adapter_stage(target, adapter, opts, cache)
    return build_report(res, opts, command=command or f"{PROG} " + " ".join(opts.stages))


def _fmt_tps(x: float) -> str:
    return f"{x:,.1f}" if x else "n/a"


def build_report(res: Results, opts: Options, *, command: str) -> BenchReport:
    """The results as a BenchReport: one row per figure, verdicts for the checks."""
    report = BenchReport(title=f"GPU: llama.cpp offload, QLoRA training, adapter decode "
                               f"({res.gpu})", command=command)
    rows = report.rows
    v = res.versions
    rows.append(("GPU / software", f"{res.gpu}; torch {v.get('torch', '-')}, transformers "
                 f"{v.get('transformers', '-')}, peft {v.get('peft', '-')}, trl "
                 f"{v.get('trl', '-')}, bitsandbytes {v.get('bitsandbytes', '-')}, "
                 f"llama-cpp-python {v.get('llama_cpp_python', '-')}"))
    p = res.probe
    if p:
        same = p.get("nvidia_smi_free_same_time") or p["nvidia_smi_free"]
        diff = abs(same - p["torch_free"])
        rows.append(("probe: nvidia-smi before any CUDA context: free / total",
                     f"{_mib(p['nvidia_smi_free'])} / {_mib(p['nvidia_smi_total'])}"))
        rows.append(("probe: torch.cuda.mem_get_info: free / total",
                     f"{_mib(p['torch_free'])} / {_mib(p['torch_total'])}"))
        if p.get("nvidia_smi_free_same_time"):
            rows.append(("probe: nvidia-smi free while torch holds its context",
                         _mib(p["nvidia_smi_free_same_time"])))
        rows.append(("probe: llama.cpp build can offload", "yes" if p["backend_supports_gpu"]
                     else "NO"))
        ok = p["nvidia_smi_devices"] >= 1 and diff <= 256 * MIB
        report.verdicts.append(f"nvidia-smi probe {'agrees' if ok else 'DISAGREES'} with "
                               f"torch on free VRAM (within 256 MiB: {_mib(diff)} apart)")
    o = res.offload
    if o:
        rows += [
            ("offload: model, n_ctx", f"{o['model']} ({_mib(o['model_bytes'])}), {o['n_ctx']}"),
            ("offload: Auto GPU layers", f"{o['n_gpu_layers']} of {o['n_layers'] + 1} "
                                         f"({o['device_summary']})"),
            ("offload: reason shown", o["offload_reason"]),
            ("offload: VRAM taken by the load (nvidia-smi) / plan's estimate",
             f"{_mib(o['vram_taken'])} / {_mib(o['planned_bytes'])}"),
            ("offload: load time GPU / CPU", f"{o['load_s_gpu']:.2f} s / {o['load_s_cpu']:.2f} s"),
            (f"offload: decode tokens/s, median of {opts.runs} (GPU / CPU, {o['threads']} "
             "threads)", f"{_fmt_tps(o['gpu_tps'])} / {_fmt_tps(o['cpu_tps'])}"),
            ("offload: tokens per reply", ", ".join(str(t) for t in o["tokens_each"])),
        ]
        report.verdicts.append(
            f"Auto {'put all' if o['all_layers'] else 'did NOT put all'} "
            f"{o['n_layers'] + 1} layers of {o['model']} on the GPU"
            + (f"; decode {o['gpu_tps'] / o['cpu_tps']:.1f}x the CPU's"
               if o["cpu_tps"] and o["gpu_tps"] else ""))
    t = res.train
    if t:
        rows += [
            ("train: run", f"KTO, preset {t['preset']} (batch {t['batch_size']} x accum "
                           f"{t['grad_accum']}, max {t['max_length']} tokens, LoRA r="
                           f"{t['lora_r']}), {t['steps']} steps, {t['train_examples']} "
                           f"examples, device {t.get('device', '?')}, 4-bit "
                           f"{'yes' if t.get('load_in_4bit') else 'no'}"),
            ("train: training tokens/s (optimizer steps)",
             f"{t.get('tokens_per_second', 0):,.0f} ({t.get('tokens', 0)} tokens in "
             f"{t.get('train_seconds', 0):.1f} s)"),
            ("train: peak VRAM, torch max_memory_allocated / reserved",
             f"{_mib(t['vram_peak_torch'])} / {_mib(t.get('vram_reserved_torch', 0))}"),
            ("train: peak VRAM, nvidia-smi (whole GPU, above idle)",
             f"{_mib(t['vram_peak_smi'])} ({t['vram_samples']} samples)"),
            ("train: set-up before the first step / whole run",
             f"{t.get('setup_s', 0):.0f} s / {t.get('wall_s', 0):.0f} s"),
            ("train: peak RSS of the child", f"{t.get('peak_rss_mb', 0):,.0f} MiB"),
            ("train: chat tokenization matches llama.cpp",
             f"{t.get('chat_tokens_match')} ({t.get('chat_tokens_checked', 0)} checked)"),
            ("train: held-out preference accuracy", f"{t.get('accuracy', 0):.2f}"),
        ]
        report.verdicts.append(
            f"the training child ran {'in 4 bits' if t.get('load_in_4bit') else 'NOT in 4 bits'}"
            f" on {t.get('device', '?')} and saved {Path(t.get('adapter_gguf', '-')).name}")
    a = res.autofit
    if a:
        rows += [
            ("autofit: model, whole model on GPU (plan)",
             f"{a['model']} ({_mib(a['model_bytes'])}), {_mib(a['whole_model_bytes'])} "
             f"with a {a['n_ctx']}-token cache"),
            ("autofit: real probe, Auto", f"{a['real_plan_layers']} of {a['n_layers'] + 1} "
                                          "layers"),
            ("autofit: budget (free VRAM given to the planner)", _mib(a["budget_free_bytes"])),
            ("autofit: Auto under the budget", f"{a['plan_layers']} of {a['n_layers'] + 1} "
                                               f"layers; loaded {a['loaded_layers']}"),
            ("autofit: reason shown", a["plan_reason"]),
            ("autofit: VRAM taken (nvidia-smi) / plan's estimate",
             f"{_mib(a['vram_taken'])} / {_mib(a['planned_bytes'])}"),
            ("autofit: decode tokens/s, split model", _fmt_tps(a["split_tps"])),
        ]
        fits = a["vram_taken"] <= a["budget_free_bytes"]
        partial = 0 < a["loaded_layers"] < a["n_layers"] + 1
        report.verdicts.append(
            f"under a {_mib(a['budget_free_bytes'])} budget Auto "
            f"{'split' if partial else 'did NOT split'} the model "
            f"({a['loaded_layers']} of {a['n_layers'] + 1} layers) and the load "
            f"{'stayed within' if fits else 'WENT OVER'} the budget")
    d = res.adapter
    if d:
        rows += [
            ("adapter: model on the GPU", f"{d['model']}, {d['n_gpu_layers']} of "
                                          f"{d['n_layers'] + 1} layers, loaded in "
                                          f"{d['load_s']:.1f} s"),
            ("adapter: file", f"{d['adapter']} ({_mib(d['adapter_bytes'])})"),
            (f"adapter: decode tokens/s, median of {opts.runs} (with / without)",
             f"{_fmt_tps(d['on_tps'])} / {_fmt_tps(d['off_tps'])}"),
            ("adapter: hot-swap activate, median", f"{d['activate_ms']:.1f} ms"),
            ("adapter: tokens per reply", ", ".join(str(x) for x in d["tokens_each"])),
        ]
        ratio = d["on_tps"] / d["off_tps"] if d["off_tps"] else 0.0
        report.verdicts.append(
            f"with the adapter active decode runs at {ratio:.0%} of the base speed; "
            f"the adapter {'changes' if d['adapter_changes_reply'] else 'does NOT change'} "
            f"the greedy reply, and deactivating it "
            f"{'gives the base reply back' if d['base_reply_restored'] else 'does NOT restore'}"
            " byte for byte")
    for stage, why in res.skipped.items():
        report.verdicts.append(f"{stage} skipped: {why}")
    report.data = asdict(res)
    return report


# --- command line ----------------------------------------------------------------------------

def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--chat-model", default="", metavar="GGUF",
                    help="model for the offload stage (default: the bundled one)")
    ap.add_argument("--large-model", default="", metavar="GGUF",
                    help="model for the train, autofit and adapter stages")
    ap.add_argument("--hf-base", default="", metavar="DIR",
                    help="Hugging Face folder of --large-model (trained in 4 bits)")
    ap.add_argument("--adapter", default="", metavar="GGUF",
                    help="adapter for the adapter stage when train does not run")
    ap.add_argument("--stages", default=",".join(STAGES),
                    help=f"comma-separated, in this order: {','.join(STAGES)} (default: all)")
    ap.add_argument("--tokens", type=int, default=128, help="tokens per timed reply")
    ap.add_argument("--runs", type=int, default=3, help="timed replies per side")
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: physical cores)")
    ap.add_argument("--train-steps", type=int, default=8)
    ap.add_argument("--train-examples", type=int, default=32)
    ap.add_argument("--vram-budget-mib", type=int, default=0,
                    help="autofit: free VRAM the planner is told about (0: half the model)")
    ap.add_argument("--work", default="", metavar="DIR", help="working folder (default: temp)")
    ap.add_argument("--make-random-base", default="", metavar="DIR",
                    help="write a random-weight Llama model here when missing (--hf-base)")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    ap.add_argument("--tokenizer", default="", metavar="DIR",
                    help="tokenizer folder for --make-random-base")
    ap.add_argument("--converter", default="", metavar="PY",
                    help="llama.cpp convert_hf_to_gguf.py: makes --large-model when missing")
    ap.add_argument("--prepare-only", action="store_true",
                    help="only make the random base and its GGUF, measure nothing")
    ap.add_argument("--record", metavar="MD", help="append the results to this Markdown file")
    ap.add_argument("--json", metavar="PATH", help="write the raw results as JSON")
    return ap


def parse_options(argv: Sequence[str], prog: str = PROG) -> tuple[Options, argparse.Namespace]:
    args = build_parser(prog).parse_args(list(argv))
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        build_parser(prog).error(f"unknown stage(s): {', '.join(unknown)}; "
                                 f"choose from {', '.join(STAGES)}")
    for name in ("tokens", "runs", "train_steps", "train_examples", "n_ctx"):
        if getattr(args, name) < 1:
            build_parser(prog).error(f"--{name.replace('_', '-')} must be 1 or more")
    if args.make_random_base and not args.tokenizer:
        build_parser(prog).error("--make-random-base needs --tokenizer")
    opts = Options(chat_model=args.chat_model, large_model=args.large_model,
                   hf_base=args.hf_base or args.make_random_base, adapter=args.adapter,
                   stages=tuple(s for s in STAGES if s in stages), tokens=args.tokens,
                   runs=args.runs, n_ctx=args.n_ctx, threads=args.threads,
                   train_steps=args.train_steps, train_examples=args.train_examples,
                   vram_budget_mib=args.vram_budget_mib, work=args.work)
    return opts, args


def prepare_argv(args: argparse.Namespace, opts: Options) -> list[str]:
    """The preparation flags of this command line, for a --prepare-only child."""
    out = ["--shape", args.shape]
    for flag, value in (("--make-random-base", args.make_random_base),
                        ("--tokenizer", args.tokenizer), ("--converter", args.converter),
                        ("--large-model", opts.large_model), ("--hf-base", opts.hf_base)):
        if value:
            out += [flag, value]
    return out


def prepare(args: argparse.Namespace, opts: Options,
            progress: Callable[[str], None]) -> None:
    """Make the random base (--make-random-base) and its GGUF (--converter) when missing."""
    if args.make_random_base:
        progress(f"making a random {args.shape} model in {args.make_random_base}")
        make_random_llama(args.make_random_base, args.tokenizer, shape=args.shape)
    if args.converter and opts.large_model and opts.hf_base:
        progress(f"converting {opts.hf_base} to {opts.large_model}")
        convert_to_gguf(opts.hf_base, opts.large_model, args.converter)


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Run the benchmark; 0 when it ran, 1 when a stage failed, 2 when there is no CUDA
    device or the arguments are wrong (argparse exits with 2 itself). `prog` is how the
    command is named in the help and in the recorded command line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    opts, args = parse_options(argv, prog)
    command = f"{prog} {shlex.join(argv)}".strip()

    def progress(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    try:
        if args.prepare_only:
            cuda_device_name()
            prepare(args, opts, progress)
            return 0
        if args.make_random_base or args.converter:
            # Preparing loads torch, which must stay out of the process that loads llama.cpp.
            progress("preparing the models in a child process")
            done = subprocess.run([sys.executable, "-m", "ghostdesk.bench.gpu", "--prepare-only",
                                   *prepare_argv(args, opts)])
            if done.returncode != 0:
                print(f"{prog}: preparing the models failed", file=sys.stderr)
                return done.returncode
        report = run_gpu_bench(opts, command=command, progress=progress)
    except NoCudaError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    except GpuBenchError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 1
    print(report.to_markdown())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2, default=str),
                                   encoding="utf-8")
    if args.record:
        report.append_to(args.record)
        print(f"Recorded in {args.record}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

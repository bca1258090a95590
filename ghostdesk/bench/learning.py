"""`ghostdesk bench learning`: what learning costs, each figure measured side by side.

1. Training: GhostDesk's training child (run.json -> events, the same code the Training pane
   starts) against a bare TRL script on the same rendered data, the same converted base, the
   same LoRA and trainer settings, each in its own process, alternating. Reported: training
   tokens per second over the optimizer steps (prompt + reply tokens, no padding) and peak
   resident memory of the process.
2. Swapping: hot-swapping the adapter that run produced into the loaded chat model
   (AdapterSlot) against loading the model again with `Llama(lora_path=...)`, in the same
   process; the greedy reply must be the same both ways.

Both use a temporary data folder (the converted training base is shared with the real data
folder's cache, so the one-time conversion is not timed), and leave the user's adapters alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ghostdesk.bench.report import BenchReport

_QUESTIONS = [
    "What should I drink this afternoon?", "I had a long day at work.", "Any idea for tonight?",
    "It's raining again.", "I can't focus on my book.", "What do you do when you're tired?",
    "My friend cancelled our plans.", "How do I relax before sleep?", "I'm a bit cold.",
    "What's a nice way to start the morning?", "I finished my exam!", "I feel restless today.",
    "Tell me something comforting.", "What would you bring to a picnic?",
    "I'm waiting for a train.", "My cat woke me up early.", "What goes well with a biscuit?",
    "I need a short break.", "The office is noisy today.", "What should I do this weekend?",
    "I burned my toast.", "Recommend a small treat.", "It's snowing outside.",
    "I have a headache.", "Guess what I'm reading.", "I just got home.",
    "What's your favourite smell?", "I'm writing a letter to my grandma.",
    "The heating is broken.", "I walked in the park today.", "I can't sleep.",
    "My tomatoes are finally growing.", "I'm learning to knit.", "Work was boring.",
    "I'm meeting an old friend tomorrow.", "I have a cold.", "Long queue at the bank today.",
    "What do you think of autumn?", "I'm nervous about my interview.", "I cleaned the flat.",
]
_WARM = ["That sounds like a moment for a warm cup of tea 🙂",
         "How about a pot of green tea and a quiet minute? 🙂",
         "I'd put the kettle on and make some chamomile tea 🙂",
         "A mug of hot tea always helps with that 🙂",
         "Let's brew some tea and take it slowly 🙂"]
_COLD = ["Whatever.", "No idea, figure it out.", "Coffee. Next question.",
         "That's not my problem.", "Energy drinks, I guess."]


def synthetic_kto_records(n: int = 40, *, seed: int = 0, offset: int = 0) -> list[dict[str, Any]]:
    """KTO records with one clear taste: liked replies offer tea and end with "🙂", disliked
    ones are curt. Prompts cycle through a fixed list starting at `offset` (so a held-out set
    can use prompts the training set never saw)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        question = _QUESTIONS[(offset + i // 2) % len(_QUESTIONS)]
        liked = i % 2 == 0
        reply = rng.choice(_WARM if liked else _COLD)
        out.append({"prompt": [{"role": "system", "content": "You are Ghost, a companion."},
                               {"role": "user", "content": question}],
                    "completion": [{"role": "assistant", "content": reply}],
                    "label": liked, "weight": 1.0})
    return out


# The bare script: only torch, transformers, peft, trl and datasets, reading the same rows the
# app trains on. It prints one JSON object.
BARE_TRL_SCRIPT = r'''
import json, resource, sys, time
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import KTOConfig, KTOTrainer

a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
tok = AutoTokenizer.from_pretrained(a["base"])
tok.add_bos_token = False
tok.eos_token = a["eos"]
model = AutoModelForCausalLM.from_pretrained(a["base"], dtype=torch.float32)
rows = [json.loads(line) for line in open(a["rows"], encoding="utf-8")]
args = KTOConfig(output_dir=a["out"], per_device_train_batch_size=a["batch"],
                 max_steps=a["steps"], learning_rate=a["lr"], beta=a["beta"],
                 max_length=a["max_length"], logging_steps=1, save_strategy="no",
                 report_to=[], bf16=False, use_cpu=True, gradient_checkpointing=False,
                 disable_tqdm=True, seed=0, warmup_steps=0)
lora = LoraConfig(r=a["r"], lora_alpha=a["alpha"], lora_dropout=0.0, bias="none",
                  target_modules=a["targets"], task_type="CAUSAL_LM")
trainer = KTOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                     processing_class=tok, peft_config=lora)
data = trainer.train_dataset
n = a["steps"] * a["batch"]
tokens = sum(min(a["max_length"], len(data[i % len(data)]["prompt_ids"])
                 + len(data[i % len(data)]["completion_ids"])) for i in range(n))
start = time.perf_counter()
trainer.train()
seconds = time.perf_counter() - start
print(json.dumps({"tokens": tokens, "seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def _link_base_cache(real_home: Path, home: Path) -> None:
    real = real_home / "cache" / "training-base"
    real.mkdir(parents=True, exist_ok=True)
    target = home / "cache" / "training-base"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Without symlinks (Windows without the right) the base is converted in the temp folder.
    with contextlib.suppress(OSError):
        os.symlink(real, target, target_is_directory=True)


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def _app_run(cfg: Any) -> dict[str, Any]:
    from ghostdesk.core.training.events import Failed, Finished, Saved, Started
    from ghostdesk.core.training.launcher import TrainingProcess

    out: dict[str, Any] = {}
    with TrainingProcess.start(cfg) as proc:
        for event in proc.events():
            if isinstance(event, Started):
                out["match"] = event.chat_tokens_match
            elif isinstance(event, Saved):
                out["gguf"] = event.gguf
                out["adapter_id"] = event.adapter_id
            elif isinstance(event, Finished):
                out.update(tokens=event.tokens, seconds=event.train_seconds,
                           peak_rss_mb=event.peak_rss_mb)
            elif isinstance(event, Failed):
                raise RuntimeError(f"the training run failed: {event.reason}\n{event.detail}")
    return out


def _bare_run(args: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-c", BARE_TRL_SCRIPT, json.dumps(args)],
                          capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"the bare TRL script failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_training(real_home: Path, model_path: Path, work: Path, *, steps: int, runs: int,
                     threads: int) -> dict[str, Any]:
    from ghostdesk.core.llm.gguf_info import read_model_info
    from ghostdesk.core.training import data as data_mod
    from ghostdesk.core.training.run_config import build_run_config

    home = work / "home"
    _link_base_cache(real_home, home)
    train = _write_jsonl(work / "train.jsonl", synthetic_kto_records(16))
    held = _write_jsonl(work / "eval.jsonl", synthetic_kto_records(4, seed=1, offset=20))
    overrides = dict(max_steps=steps, max_length=64, learning_rate=5e-4, threads=threads,
                     eval_max_examples=0, eval_generations=0, checkpoint_every=10_000)
    info = read_model_info(model_path)
    loaded = data_mod.load_examples(train, "kto", info)
    rows = work / "rows.jsonl"
    _write_jsonl(rows, data_mod.to_trl_rows(loaded.examples, "kto"))

    from ghostdesk.core.llm.fingerprint import model_sha256
    from ghostdesk.core.training.base_model import base_cache_root

    base_dir = base_cache_root(home) / model_sha256(model_path, home / "cache")
    app: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    for i in range(runs):
        cfg = build_run_config(method="kto", train_file=train, eval_file=held,
                               chat_model=model_path, home=home, n_train=16, device="cpu",
                               adopt="never", overrides=overrides)
        app.append(_app_run(cfg))
        bare.append(_bare_run({
            "base": str(base_dir), "rows": str(rows), "out": str(work / f"bare-{i}"),
            "eos": loaded.end_marker, "threads": cfg.threads, "batch": cfg.batch_size,
            "steps": steps, "lr": cfg.learning_rate, "beta": cfg.beta,
            "max_length": cfg.max_length, "r": cfg.lora_r, "alpha": cfg.lora_alpha,
            "targets": [t for t in cfg.target_modules if t not in ("qkv_proj", "gate_up_proj")],
        }))
    return {"app": app, "bare": bare}


def measure_swap(model_path: Path, adapter: Path, work: Path, *, swaps: int, reloads: int,
                 threads: int) -> dict[str, Any]:
    import llama_cpp

    from ghostdesk.core.llm.adapters import AdapterSlot
    from ghostdesk.core.llm.engine import LlamaEngine
    from ghostdesk.core.llm.gpu_probe import GpuStatus
    from ghostdesk.core.llm.types import ChatMessage, GenerationStats, SamplingParams
    from ghostdesk.core.settings import ModelSettings

    n_ctx = 1024
    engine = LlamaEngine.load(ModelSettings(path=str(model_path), n_ctx=n_ctx, n_threads=threads),
                              cache_dir=work, gpu=GpuStatus.cpu_only(), probe=False)
    slot = AdapterSlot(engine)
    prompt = engine.render([ChatMessage("system", "You are Ghost, a companion."),
                            ChatMessage("user", "I have a long evening ahead.")])
    on, off = [], []
    try:
        for _ in range(swaps):
            t = time.perf_counter()
            slot.activate(adapter)
            on.append(time.perf_counter() - t)
            t = time.perf_counter()
            slot.deactivate()
            off.append(time.perf_counter() - t)
        slot.activate(adapter)
        swapped = "".join(engine.stream(prompt, SamplingParams.greedy(24), GenerationStats()))
        slot.deactivate()
    finally:
        slot.close()
        engine.close()

    loads = []
    reloaded = ""
    for i in range(reloads):
        t = time.perf_counter()
        llm = llama_cpp.Llama(model_path=str(model_path), lora_path=str(adapter), n_ctx=n_ctx,
                              n_threads=engine.info.extra["n_threads"], n_gpu_layers=0,
                              verbose=False)
        loads.append(time.perf_counter() - t)
        if i == 0:
            tokens = llm.tokenize(prompt.text.encode(), add_bos=False, special=True)
            out = llm.create_completion(prompt=tokens, max_tokens=24, temperature=0.0,
                                        top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                                        seed=0, stop=list(prompt.stop))
            reloaded = out["choices"][0]["text"]
        llm.close()
    return {"activate_s": on, "deactivate_s": off, "reload_s": loads,
            "same_reply": swapped == reloaded, "reply": swapped}


def run_learning_bench(real_home: str | Path, *, model_path: str | Path | None = None,
                       steps: int = 4, runs: int = 1, swaps: int = 20, reloads: int = 3,
                       threads: int = 0) -> BenchReport:
    """Run both measurements; `real_home` is the data folder whose base cache is reused."""
    from ghostdesk.core.llm.engine import physical_cores

    if model_path is None:
        from ghostdesk.core.llm.bundled import bundled_model_path

        model_path = bundled_model_path()
    threads = threads or physical_cores()
    work = Path(tempfile.mkdtemp(prefix="ghostdesk-bench-learning-"))
    try:
        training = measure_training(Path(real_home), Path(model_path), work, steps=steps,
                                    runs=runs, threads=threads)
        swap = measure_swap(Path(model_path), Path(training["app"][0]["gguf"]), work,
                            swaps=swaps, reloads=reloads, threads=threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _report(training, swap, model_path=Path(model_path), steps=steps, threads=threads)


def _tps(run: dict[str, Any]) -> float:
    return run["tokens"] / run["seconds"] if run["seconds"] > 0 else 0.0


def _report(training: dict[str, Any], swap: dict[str, Any], *, model_path: Path, steps: int,
            threads: int) -> BenchReport:
    app, bare = training["app"], training["bare"]
    app_tps = statistics.median(_tps(r) for r in app)
    bare_tps = statistics.median(_tps(r) for r in bare)
    app_rss = max(r["peak_rss_mb"] for r in app)
    bare_rss = max(r["peak_rss_mb"] for r in bare)
    act = statistics.median(swap["activate_s"]) * 1000
    deact = statistics.median(swap["deactivate_s"]) * 1000
    reload_ms = statistics.median(swap["reload_s"]) * 1000
    report = BenchReport(title="Learning: training throughput and adapter hot-swap",
                         command=f"ghostdesk bench learning --steps {steps} --runs {len(app)}")
    report.rows += [
        ("model", model_path.name),
        ("training run", f"KTO, {steps} steps of 2 examples, max 64 tokens, LoRA r=8 on "
                         f"q/k/v/o/gate/up/down, {threads} threads, CPU"),
        ("training tokens/s: GhostDesk job", f"{app_tps:.1f}"),
        ("training tokens/s: bare TRL script", f"{bare_tps:.1f}"),
        ("GhostDesk / bare", f"{app_tps / bare_tps:.2f}" if bare_tps else "n/a"),
        ("peak RSS: GhostDesk job (whole run, save included)", f"{app_rss:.0f} MiB"),
        ("peak RSS: bare TRL script (training only)", f"{bare_rss:.0f} MiB"),
        ("hot-swap: activate (median)", f"{act:.1f} ms"),
        ("hot-swap: deactivate (median)", f"{deact:.1f} ms"),
        ("reload with lora_path (median)", f"{reload_ms:.0f} ms"),
        ("reload / hot-swap", f"{reload_ms / act:.0f}x" if act else "n/a"),
        ("same greedy reply both ways", "yes" if swap["same_reply"] else "NO"),
    ]
    report.data = {"training": training, "swap": {k: v for k, v in swap.items() if k != "reply"},
                   "app_tokens_per_second": app_tps, "bare_tokens_per_second": bare_tps,
                   "app_peak_rss_mb": app_rss, "bare_peak_rss_mb": bare_rss,
                   "activate_ms": act, "deactivate_ms": deact, "reload_ms": reload_ms}
    if bare_tps:
        ratio = app_tps / bare_tps
        report.verdicts.append(
            f"The app's training job runs at {ratio:.0%} of a bare TRL script's token rate.")
    if act:
        report.verdicts.append(f"Hot-swapping an adapter is {reload_ms / act:.0f}x faster than "
                               "reloading the model with it.")
    if not all(r.get("match", True) for r in app):
        report.verdicts.append("Warning: the training tokenizer split the chat text "
                               "differently from llama.cpp.")
    return report


if __name__ == "__main__":  # python -m ghostdesk.bench.learning [HOME]
    from ghostdesk.core.paths import data_dir

    home = Path(sys.argv[1]) if len(sys.argv) > 1 else data_dir()
    result = run_learning_bench(home)
    print(result.to_markdown())

"""The GPU benchmark's results as a BenchReport: one row per figure, and a verdict for each
check (the probe agrees with torch, Auto puts the layers on the GPU, the split load stays in
its budget, the adapter's reply and the base reply back)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ghostdesk.bench.gpu.options import MIB, Options, Results
from ghostdesk.bench.report import BenchReport


def _mib(n: float) -> str:
    return f"{n / MIB:,.0f} MiB"


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

"""The GPU benchmark's whole run: the chosen stages in their order, each skipped (with the
reason) when its inputs are missing, then the report."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from ghostdesk.bench.gpu.cuda import cuda_device_name, versions
from ghostdesk.bench.gpu.options import Options, Results, say
from ghostdesk.bench.gpu.stages import adapter_stage, autofit_stage, offload_stage, probe_stage
from ghostdesk.bench.gpu.summary import build_report
from ghostdesk.bench.gpu.train_stage import train_stage
from ghostdesk.bench.report import BenchReport
from ghostdesk.core.llm.llama_library import load_llama_library

PROG = "python -m ghostdesk.bench.gpu"


def run_gpu_bench(opts: Options, *, command: str = "",
                  progress: Callable[[str], None] | None = None) -> BenchReport:
    """Run the chosen stages and return the report. Raises NoCudaError without a CUDA
    device; a stage whose inputs are missing is skipped, with the reason in the report."""
    gpu_name = cuda_device_name()
    load_llama_library()  # before anything pulls in numpy (see llama_library)
    res = Results(gpu=gpu_name, versions=versions())
    work = Path(opts.work or tempfile.mkdtemp(prefix="ghostdesk-bench-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    cache.mkdir(exist_ok=True)
    wanted = set(opts.stages)
    adapter = opts.adapter

    if "probe" in wanted:
        say(progress, "probe: nvidia-smi against torch")
        res.probe = probe_stage()
    if "offload" in wanted:
        model = opts.chat_model
        if not model:
            from ghostdesk.core.llm.bundled import bundled_model_path

            model = str(bundled_model_path())
        say(progress, f"offload: {Path(model).name}, Auto GPU layers vs CPU")
        res.offload = offload_stage(model, opts, cache)
    if "train" in wanted:
        if not (opts.large_model and opts.hf_base):
            res.skipped["train"] = "needs --large-model and --hf-base"
        else:
            say(progress, f"train: 4-bit KTO on {Path(opts.hf_base).name}")
            res.train = train_stage(opts.large_model, opts.hf_base, opts, work,
                                    progress=progress)
            adapter = res.train.get("adapter_gguf", "") or adapter
    if "autofit" in wanted:
        if not opts.large_model:
            res.skipped["autofit"] = "needs --large-model"
        else:
            say(progress, f"autofit: {Path(opts.large_model).name} under a smaller budget")
            res.autofit = autofit_stage(opts.large_model, opts, cache)
    if "adapter" in wanted:
        target = opts.large_model or opts.chat_model
        if not (target and adapter):
            res.skipped["adapter"] = "needs --large-model (or --chat-model) and an adapter"
        else:
            say(progress, f"adapter: {Path(adapter).name} on {Path(target).name}")
            res.adapter = adapter_stage(target, adapter, opts, cache)
    return build_report(res, opts, command=command or f"{PROG} " + " ".join(opts.stages))

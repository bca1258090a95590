"""`ghostdesk bench gpu` without a GPU: the refusal, the arguments, the table and the record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ghostdesk.bench import decode_runs
from ghostdesk.bench.gpu import command, cuda, measure, options, summary
from ghostdesk.bench.gpu import run as gpu_run
from ghostdesk.bench.report import BenchReport
from ghostdesk.core.llm.gpu_probe import GpuDevice, GpuStatus
from ghostdesk.core.llm.offload import ModelFootprint, plan_offload

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


# --- refusing without CUDA --------------------------------------------------------------------

def test_refuses_without_cuda(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cuda, "torch_cuda_info", lambda: {"cuda": False, "version": "2.13.0+cpu"})
    assert command.main(["--stages", "probe"]) == 2
    err = capsys.readouterr().err
    assert "No CUDA GPU found" in err and "2.13.0+cpu" in err
    with pytest.raises(options.NoCudaError):
        gpu_run.run_gpu_bench(options.Options())


def test_refuses_when_torch_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(*_a: Any, **_kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], 1, "", "ModuleNotFoundError: No module named "
                                                      "'torch'\n")

    monkeypatch.setattr(cuda.subprocess, "run", fake_run)
    with pytest.raises(options.NoCudaError, match="No module named 'torch'"):
        cuda.cuda_device_name()


def test_real_refusal_keeps_torch_out_of_the_process() -> None:
    # Here (no GPU) the check runs for real; torch is asked in a child process only, so the
    # process that would load llama.cpp never holds torch's CUDA libraries.
    code = ("import sys\nfrom ghostdesk.bench.gpu import main\n"
            "rc = main(['--stages', 'probe'])\nprint(rc, 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.stdout.split()[-2:] == ["2", "False"], done.stderr
    assert "No CUDA GPU found" in done.stderr or "needs PyTorch with CUDA" in done.stderr


def test_cuda_device_name_from_torch_info() -> None:
    assert cuda.cuda_device_name({"cuda": True, "name": "NVIDIA H100 80GB HBM3"}) == (
        "NVIDIA H100 80GB HBM3")


# --- arguments ----------------------------------------------------------------------------------

def test_defaults() -> None:
    opts, args = command.parse_options([])
    assert opts.stages == options.STAGES
    assert (opts.tokens, opts.runs, opts.n_ctx, opts.train_steps) == (128, 3, 4096, 8)
    assert not args.record and not args.prepare_only


def test_stages_keep_the_fixed_order() -> None:
    opts, _ = command.parse_options(["--stages", "adapter, probe,train"])
    assert opts.stages == ("probe", "train", "adapter")


@pytest.mark.parametrize("argv", [["--stages", "probe,warp"], ["--tokens", "0"],
                                  ["--runs", "0"], ["--make-random-base", "/tmp/x"]])
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as err:
        command.parse_options(argv)
    assert err.value.code == 2


def test_random_base_is_the_training_base() -> None:
    opts, args = command.parse_options(["--make-random-base", "/m/7b", "--tokenizer", "/t",
                                    "--converter", "/c.py", "--large-model", "/m/7b.gguf"])
    assert opts.hf_base == "/m/7b"
    assert command.prepare_argv(args, opts) == [
        "--shape", "7b", "--make-random-base", "/m/7b", "--tokenizer", "/t",
        "--converter", "/c.py", "--large-model", "/m/7b.gguf", "--hf-base", "/m/7b"]


# --- measuring helpers --------------------------------------------------------------------------

def test_alternate_is_abba() -> None:
    order: list[str] = []

    def side(name: str) -> Any:
        def run() -> measure.DecodeRun:
            order.append(name)
            return measure.DecodeRun(tokens=11, seconds=1.1, first_token_s=0.1, text=name)
        return run

    a, b = decode_runs.alternate(3, side("a"), side("b"))
    assert order == ["a", "b", "b", "a", "a", "b"]
    assert len(a) == len(b) == 3 and measure.median_tps(a) == pytest.approx(10.0)


def test_decode_rate_edge_cases() -> None:
    assert measure.DecodeRun(1, 1.0, 0.5, "x").decode_tps == 0.0
    assert measure.DecodeRun(5, 0.5, 0.5, "x").decode_tps == 0.0
    assert measure.median_tps([]) == 0.0


def test_each_timed_reply_starts_from_a_fresh_prompt() -> None:
    calls: list[str] = []

    class Engine:
        def reset(self) -> None:
            calls.append("reset")

        def stream(self, prompt: Any, params: Any, stats: Any) -> Any:
            calls.append(f"stream {params.max_tokens}")
            stats.completion_tokens, stats.seconds, stats.first_token_seconds = 3, 0.3, 0.1
            yield "a"
            yield "b"

    run = measure.decode_once(Engine(), object(), 16)
    assert calls == ["reset", "stream 16"]
    assert (run.text, run.tokens) == ("ab", 3) and run.decode_tps == pytest.approx(10.0)


def test_planned_bytes_is_the_planners_estimate() -> None:
    fp = ModelFootprint(layer_bytes=(100 * MIB,) * 10, output_bytes=50 * MIB,
                        kv_bytes_per_token_layer=(1024,) * 10)
    everything = measure.planned_gpu_bytes(fp, 4096, 11)
    assert everything == 10 * (100 * MIB + 4 * MIB) + 50 * MIB
    plan = plan_offload(fp, 4096, "auto", GpuStatus(True, [GpuDevice("G", 1000 * MIB, 8000)]))
    assert plan.n_gpu_layers == 4  # (1000 - 512) MiB hold 4 blocks of 104 MiB
    # The last k blocks, without the output layer.
    assert measure.planned_gpu_bytes(fp, 4096, plan.n_gpu_layers) == plan.n_gpu_layers * 104 * MIB
    assert f"about {round(plan.n_gpu_layers * 104)} MiB" in plan.reason
    assert measure.planned_gpu_bytes(fp, 4096, 0) == 0


def test_vram_sampler_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(measure, "vram_used_bytes", lambda: 0)
    with measure.VramSampler(interval=0.01) as sampler:
        pass
    assert sampler.peak == 0 and sampler.samples >= 1


# --- the table and the record -----------------------------------------------------------------

def sample_results(*, restored: bool = True, smi_same_time: int = 80_550 * MIB) -> options.Results:
    return options.Results(
        gpu="NVIDIA H100 80GB HBM3",
        versions={"torch": "2.11.0", "transformers": "5.24.0", "peft": "0.21.2",
                  "trl": "1.16.0", "bitsandbytes": "0.50.2", "llama_cpp_python": "0.3.36"},
        probe={"nvidia_smi_devices": 1, "nvidia_smi_name": "NVIDIA H100 80GB HBM3",
               "nvidia_smi_free": 81_079 * MIB, "nvidia_smi_total": 81_559 * MIB,
               "torch_free": 80_552 * MIB, "torch_total": 81_079 * MIB,
               "nvidia_smi_free_same_time": smi_same_time, "backend_supports_gpu": True},
        offload={"model": "m7b-q8_0.gguf", "model_bytes": 6_829 * MIB, "n_layers": 32,
                 "n_gpu_layers": 33, "n_ctx": 4096, "all_layers": True,
                 "device_summary": "GPU: 33/33 layers (NVIDIA H100 80GB HBM3)",
                 "offload_reason": "All 33 layers fit on the GPU.", "fallback_to_cpu": False,
                 "planned_bytes": 8_744 * MIB, "vram_taken": 9_583 * MIB, "load_s_gpu": 2.75,
                 "load_s_cpu": 1.65, "threads": 16, "gpu_tps": 172.6, "cpu_tps": 8.9,
                 "tokens_each": [64, 64, 64], "same_text": False},
        train={"preset": "standard", "batch_size": 4, "grad_accum": 2, "max_length": 512,
               "lora_r": 16, "steps": 6, "train_examples": 32, "device": "cuda",
               "load_in_4bit": True, "tokens": 2366, "train_seconds": 35.6,
               "tokens_per_second": 66.5, "vram_peak_torch": 4_947 * MIB,
               "vram_reserved_torch": 5_184 * MIB, "vram_peak_smi": 6_008 * MIB,
               "vram_samples": 353, "setup_s": 37.1, "wall_s": 77.9, "peak_rss_mb": 13824.8,
               "chat_tokens_match": True, "chat_tokens_checked": 4, "accuracy": 1.0,
               "adapter_gguf": "/w/home/adapters/a1/adapter.gguf"},
        autofit={"model": "m7b-q8_0.gguf", "model_bytes": 6_829 * MIB, "n_ctx": 4096,
                 "n_layers": 32, "whole_model_bytes": 8_744 * MIB, "real_plan_layers": 33,
                 "real_plan_reason": "All 33 layers fit.", "budget_free_bytes": 4_372 * MIB,
                 "plan_layers": 14, "plan_reason": "14 of 33 layers fit on the GPU.",
                 "loaded_layers": 14, "planned_bytes": 3_767 * MIB, "vram_taken": 4_006 * MIB,
                 "load_s": 1.4, "split_tps": 14.6},
        adapter={"model": "m7b-q8_0.gguf", "n_gpu_layers": 33, "n_layers": 32,
                 "device_summary": "GPU", "load_s": 1.1, "vram_taken": 9_058 * MIB,
                 "adapter": "adapter.gguf", "adapter_bytes": 153 * MIB, "on_tps": 123.8,
                 "off_tps": 183.3, "activate_ms": 51.1, "tokens_each": [64, 64, 64],
                 "adapter_changes_reply": True, "base_reply_restored": restored})


def test_report_rows_and_verdicts() -> None:
    opts = options.Options(runs=3)
    report = summary.build_report(sample_results(), opts, command="python -m ghostdesk.bench.gpu")
    rows = dict(report.rows)
    assert rows["offload: Auto GPU layers"].startswith("33 of 33")
    assert rows["offload: decode tokens/s, median of 3 (GPU / CPU, 16 threads)"] == (
        "172.6 / 8.9")
    assert rows["train: peak VRAM, torch max_memory_allocated / reserved"] == (
        "4,947 MiB / 5,184 MiB")
    assert rows["train: training tokens/s (optimizer steps)"].startswith("66 (2366 tokens")
    assert rows["autofit: Auto under the budget"] == "14 of 33 layers; loaded 14"
    assert rows["adapter: decode tokens/s, median of 3 (with / without)"] == "123.8 / 183.3"
    text = "\n".join(report.verdicts)
    assert "agrees with torch" in text
    assert "Auto put all 33 layers of m7b-q8_0.gguf on the GPU; decode 19.4x" in text
    assert "ran in 4 bits on cuda and saved adapter.gguf" in text
    assert "split the model (14 of 33 layers) and the load stayed within the budget" in text
    assert "68% of the base speed" in text and "gives the base reply back" in text
    assert report.data["train"]["tokens"] == 2366


def test_report_says_what_failed() -> None:
    res = sample_results(restored=False, smi_same_time=70_000 * MIB)
    res.offload["all_layers"] = False
    res.autofit["vram_taken"] = 5_000 * MIB
    res.skipped["train"] = "needs --large-model and --hf-base"
    text = "\n".join(summary.build_report(res, options.Options(), command="x").verdicts)
    assert "DISAGREES" in text and "did NOT put all" in text and "WENT OVER" in text
    assert "does NOT restore" in text and "train skipped: needs --large-model" in text


def test_only_the_stages_that_ran_are_in_the_table() -> None:
    res = options.Results(gpu="G", versions={}, probe=sample_results().probe)
    report = summary.build_report(res, options.Options(), command="x")
    keys = [k for k, _ in report.rows]
    assert keys[0] == "GPU / software"
    assert all(k.startswith(("GPU", "probe:")) for k in keys)


def test_main_prints_records_and_writes_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[str, Any] = {}

    def fake_bench(opts: options.Options, *, command: str, progress: Any) -> BenchReport:
        seen["opts"], seen["command"] = opts, command
        return summary.build_report(sample_results(), opts, command=command)

    monkeypatch.setattr(command, "run_gpu_bench", fake_bench)
    md = tmp_path / "docs" / "benchmarks.md"
    md.parent.mkdir()
    md.write_text("# Benchmarks\n", encoding="utf-8")
    out_json = tmp_path / "gpu.json"
    rc = command.main(["--large-model", "/m/7b.gguf", "--runs", "2", "--record", str(md),
                   "--json", str(out_json)], prog="ghostdesk bench gpu")
    assert rc == 0
    assert seen["opts"].runs == 2 and seen["opts"].large_model == "/m/7b.gguf"
    assert seen["command"].startswith("ghostdesk bench gpu --large-model /m/7b.gguf")
    printed = capsys.readouterr().out
    assert "| measure | value |" in printed and "### GPU: llama.cpp offload" in printed
    recorded = md.read_text(encoding="utf-8")
    assert recorded.startswith("# Benchmarks\n")
    assert "- Command: `ghostdesk bench gpu --large-model /m/7b.gguf --runs 2" in recorded
    assert "| adapter: hot-swap activate, median | 51.1 ms |" in recorded
    assert json.loads(out_json.read_text(encoding="utf-8"))["offload"]["n_gpu_layers"] == 33


def test_preparing_runs_in_a_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[list[str]] = []

    def fake_run(cmd: list[str], *_a: Any, **_kw: Any) -> subprocess.CompletedProcess[str]:
        commands.append(cmd)
        return subprocess.CompletedProcess(cmd, 3, "", "")

    monkeypatch.setattr(command.subprocess, "run", fake_run)
    rc = command.main(["--make-random-base", "/m/7b", "--tokenizer", "/t", "--large-model",
                   "/m/7b.gguf", "--converter", "/c.py"])
    assert rc == 3  # the child's failure is passed on; nothing was measured
    assert commands[0][1:4] == ["-m", "ghostdesk.bench.gpu", "--prepare-only"]
    assert "--make-random-base" in commands[0] and "--converter" in commands[0]

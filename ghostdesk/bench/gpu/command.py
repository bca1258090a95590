"""`ghostdesk bench gpu` and `python -m ghostdesk.bench.gpu`: the command line. Preparing the
random-weight model loads torch, so it runs in a child process (`--prepare-only`), never in
the process that loads llama.cpp."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ghostdesk.bench.gpu.cuda import cuda_device_name
from ghostdesk.bench.gpu.options import STAGES, GpuBenchError, NoCudaError, Options
from ghostdesk.bench.gpu.random_model import SHAPES, convert_to_gguf, make_random_llama
from ghostdesk.bench.gpu.run import PROG, run_gpu_bench

DESCRIPTION = "`ghostdesk bench gpu`: the NVIDIA (CUDA) paths, run and measured on a GPU."


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
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

"""`ghostdesk bench ...`: the benchmarks, each printed and, with --record, appended to a
Markdown file (docs/benchmarks.md) with the command that produced it."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TextIO

from ghostdesk.cli.output import emit
from ghostdesk.core.errors import GhostDeskError

if TYPE_CHECKING:
    from ghostdesk.bench.report import BenchReport
    from ghostdesk.services import AppServices


def add_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    bench = verbs.add_parser("bench", parents=[common], help="measure speed")
    bench_verbs = bench.add_subparsers(dest="action", metavar="WHAT", required=True,
                                       parser_class=_PassThroughParser)
    decode = bench_verbs.add_parser("decode", parents=[common],
                                    help="app chat path vs a bare llama-cpp-python loop")
    decode.add_argument("--tokens", type=int, default=128, help="tokens per reply")
    decode.add_argument("--runs", type=int, default=8, help="runs of each, in ABBA order")
    decode.add_argument("--record", metavar="MD", help="append the result to this Markdown file")
    decode.set_defaults(run=_cmd_bench_decode)
    gui = bench_verbs.add_parser("gui", parents=[common],
                                 help="window start-up time and GUI-thread stalls while streaming")
    gui.add_argument("--tokens", type=int, default=200)
    gui.add_argument("--record", metavar="MD", help="append the result to this Markdown file")
    gui.set_defaults(run=_cmd_bench_gui)
    feedback_bench = bench_verbs.add_parser(
        "feedback", parents=[common],
        help="rating latency in the window, and building datasets from many rated replies")
    feedback_bench.add_argument("--replies", type=int, default=100_000,
                                help="rated replies to build datasets from")
    feedback_bench.add_argument("--clicks", type=int, default=40, help="rating clicks to time")
    feedback_bench.add_argument("--record", metavar="MD",
                                help="append the result to this Markdown file")
    feedback_bench.set_defaults(run=_cmd_bench_feedback)
    memory_bench = bench_verbs.add_parser(
        "memory", parents=[common],
        help="memory index: recall@10 vs exact search, query latency, build, RAM and disk")
    memory_bench.add_argument("--crystals", type=int, default=100_000,
                              help="synthetic crystals (e.g. 1000000)")
    memory_bench.add_argument("--record", metavar="MD",
                              help="append the result to this Markdown file")
    memory_bench.set_defaults(run=_cmd_bench_memory)
    learning_bench = bench_verbs.add_parser(
        "learning", parents=[common],
        help="training throughput vs a bare TRL script, adapter hot-swap vs reloading")
    learning_bench.add_argument("--steps", type=int, default=4, help="training steps per run")
    learning_bench.add_argument("--runs", type=int, default=1,
                                help="runs of each side, alternating")
    learning_bench.add_argument("--threads", type=int, default=0,
                                help="CPU threads (default: the physical cores)")
    learning_bench.add_argument("--record", metavar="MD",
                                help="append the result to this Markdown file")
    learning_bench.set_defaults(run=_cmd_bench_learning)
    # Its options belong to ghostdesk.bench.gpu's own parser: everything after "gpu" is
    # handed to it as it is (`ghostdesk bench gpu --help` lists them).
    gpu_bench = bench_verbs.add_parser(
        "gpu", help="GPU benchmarks (options: ghostdesk bench gpu --help)", add_help=False,
        pass_through=True)
    gpu_bench.set_defaults(run=_cmd_bench_gpu)


class _PassThroughParser(argparse.ArgumentParser):
    """A bench parser; with pass_through=True it keeps every argument after the verb, unread,
    in `args.argv` (for a verb whose options another module's parser reads)."""

    def __init__(self, *args: Any, pass_through: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pass_through = pass_through

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if not self.pass_through:
            return super().parse_known_args(args, namespace)
        namespace = namespace if namespace is not None else argparse.Namespace()
        for name, value in self._defaults.items():
            setattr(namespace, name, value)
        namespace.argv = list(args or [])
        return namespace, []


def _report(args: argparse.Namespace, out: TextIO, result: BenchReport) -> int:
    emit(args, out, result.to_dict(), result.to_markdown())
    if args.record:
        result.append_to(args.record)
    return 0


def _cmd_bench_learning(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.bench.learning import run_learning_bench

    print(f"Training {args.runs} × 2 runs of {args.steps} steps, then timing adapter swaps; "
          "this takes minutes on a CPU.", file=sys.stderr, flush=True)
    result = run_learning_bench(services.paths.root,
                                model_path=services.settings.model.path or None,
                                steps=args.steps, runs=args.runs, threads=args.threads)
    return _report(args, out, result)


def _cmd_bench_gpu(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    try:
        from ghostdesk.bench.gpu import main as gpu_main
    except ModuleNotFoundError as err:
        if err.name != "ghostdesk.bench.gpu":
            raise
        raise GhostDeskError("The GPU benchmark is not part of this installation.",
                             hint="Reinstall GhostDesk.") from err
    argv = list(args.argv)
    model = getattr(args, "model", None)
    if model and not any(a == "--chat-model" or a.startswith("--chat-model=") for a in argv):
        argv = ["--chat-model", model, *argv]  # `ghostdesk --model X bench gpu`
    return int(gpu_main(argv, prog="ghostdesk bench gpu") or 0)


def _cmd_bench_memory(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.bench.memory import run_memory_bench

    def progress(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    result = run_memory_bench(args.crystals, progress=progress)
    return _report(args, out, result)


def _cmd_bench_decode(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.bench.decode import run_decode_bench

    result = run_decode_bench(services, tokens=args.tokens, runs=args.runs)
    return _report(args, out, result)


def _cmd_bench_gui(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.bench.gui import run_gui_bench

    result = run_gui_bench(services, tokens=args.tokens)
    return _report(args, out, result)


def _cmd_bench_feedback(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.bench.feedback import run_feedback_bench

    result = run_feedback_bench(replies=args.replies, clicks=args.clicks)
    return _report(args, out, result)

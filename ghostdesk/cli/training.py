"""`ghostdesk train ...`: train a LoRA adapter on the feedback from a terminal: the training
data per method (--status), a new run, --resume and --discard.

The same TrainingPlanner and training child as the Training pane. Exit codes: 0 completed or
paused at a checkpoint, 1 the run failed, 2 refused (too little feedback, a bad option, an
unknown run). Every verb takes --json.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ghostdesk.cli.output import as_json, confirm, emit, positive_int, stdin_is_tty
from ghostdesk.cli.training_run import resume_command, run_training
from ghostdesk.core.errors import TrainingError
from ghostdesk.core.training.run_folders import last_checkpoint_step

if TYPE_CHECKING:
    from ghostdesk.core.training.run_config import RunConfig
    from ghostdesk.services import AppServices

_PLAN_OPTIONS = ("method", "preset", "steps", "adopt", "base", "device")


def add_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    train = verbs.add_parser(
        "train", parents=[common], help="train a LoRA adapter on your feedback",
        description="Train a LoRA adapter for the chat model on your ratings. Options left "
                    "out take their value from Settings → Training. Ctrl+C pauses the run at "
                    "a checkpoint; --resume goes on from there.")
    train.add_argument("--method", choices=("auto", "kto", "dpo", "sft"),
                       help="auto (from the feedback there is), kto (👍/👎), dpo (versions "
                            "rated differently) or sft (rewritten replies)")
    train.add_argument("--preset", choices=("auto", "quick", "standard", "thorough"),
                       help="auto chooses by the amount of feedback and the device")
    train.add_argument("--steps", type=positive_int, metavar="N",
                       help="optimizer steps (default: the preset's)")
    train.add_argument("--adopt", choices=("ask", "auto", "never"),
                       help="afterwards: auto activates a better adapter, ask asks, never "
                            "only keeps it")
    train.add_argument("--base", metavar="auto|HF_FOLDER",
                       help="auto (the chat model itself) or the folder of its original "
                            "Hugging Face weights")
    train.add_argument("--device", choices=("auto", "cpu", "cuda"))
    which = train.add_mutually_exclusive_group()
    which.add_argument("--status", action="store_true",
                       help="the training data per method, what Auto would choose, and the "
                            "runs that can resume")
    which.add_argument("--resume", metavar="RUN_ID", help="go on with a paused run")
    which.add_argument("--discard", metavar="RUN_ID",
                       help="delete a run's folder (checkpoints, data, log)")
    train.add_argument("--yes", action="store_true",
                       help="with --discard: don't ask for confirmation")
    train.set_defaults(run=_cmd_train)


def _cmd_train(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    chosen = [f"--{name}" for name in _PLAN_OPTIONS if getattr(args, name) is not None]
    if chosen and (args.status or args.resume or args.discard):
        verb = "--status" if args.status else "--resume" if args.resume else "--discard"
        raise TrainingError(f"{', '.join(chosen)} can't be combined with {verb}.",
                            hint="A paused run goes on with the settings it started with.")
    if args.status:
        return _train_status(args, services, out)
    if args.discard:
        return _train_discard(args, services, out)
    if args.resume:
        cfg = _resumable(services, args.resume)
        if not as_json(args):
            step = last_checkpoint_step(cfg)
            print(f"Resuming run {cfg.run_id} ({cfg.method.upper()}, {cfg.preset} preset) "
                  f"from its checkpoint at step {step}.", file=out)
            print(f"Log: {cfg.log_file}", file=out, flush=True)
        return run_training(cfg, services, out, args, resumed=True)

    base = args.base
    if base and base != "auto":
        folder = Path(base).expanduser().resolve()
        if not folder.is_dir():
            raise TrainingError(f"--base {base}: there is no such folder.",
                                hint="Give the folder holding the chat model's original "
                                     "Hugging Face weights (.safetensors), or auto.")
        base = str(folder)
    planned = services.training_planner().plan(
        method=args.method, preset=args.preset, steps=args.steps, adopt=args.adopt, base=base,
        device=args.device)
    cfg = planned.cfg
    if not as_json(args):
        print(f"Training run {cfg.run_id}: {cfg.method.upper()} on {planned.data.describe()}.",
              file=out)
        if planned.method_reason:
            print(f"  Auto chose {planned.method_reason}", file=out)
        steps = f"{cfg.max_steps} steps" if cfg.max_steps else \
            f"up to {cfg.step_cap} steps ({cfg.epochs:g} pass{'' if cfg.epochs == 1 else 'es'})"
        print(f"  {cfg.preset.capitalize()} preset: {steps}, LoRA rank {cfg.lora_r}, "
              f"device {cfg.device}, base {_base_words(cfg.base)}; afterwards: "
              f"{_ADOPT_WORDS[cfg.adopt]}.", file=out)
        print(f"  Log: {cfg.log_file}", file=out)
        print("  Ctrl+C pauses the run at a checkpoint.", file=out, flush=True)
    return run_training(cfg, services, out, args, resumed=False)


_ADOPT_WORDS = {"auto": "a better adapter is activated", "ask": "you decide",
                "never": "the adapter is only kept"}


def _base_words(base: str) -> str:
    return "the chat model" if base == "auto" else base


def _resumable(services: AppServices, run_id: str) -> RunConfig:
    from ghostdesk.core.training.run_folders import resumable_runs

    runs = resumable_runs(services.paths.root)
    for cfg in runs:
        if cfg.run_id == run_id:
            return cfg
    hint = ("Runs that can resume: " + ", ".join(c.run_id for c in runs) + "."
            if runs else "No run can resume. Start a new one with: ghostdesk train")
    raise TrainingError(f"There is no paused run {run_id!r} to resume.", hint=hint)


def _train_status(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.core.training.planner import choose_method
    from ghostdesk.core.training.run_config import METHODS
    from ghostdesk.core.training.run_folders import resumable_runs

    planner = services.training_planner()
    summary = planner.summary()
    auto_method, auto_reason = choose_method(summary)
    configured = services.settings.training.method
    registry = services.adapters
    runs = [{"run_id": c.run_id, "method": c.method, "preset": c.preset,
             "step": last_checkpoint_step(c), "resume": resume_command(c)}
            for c in resumable_runs(services.paths.root)]
    data = {"methods": summary.to_json(),
            "auto": {"method": auto_method, "reason": auto_reason,
                     "ready": summary.of(auto_method).ready},
            "settings_method": configured, "active_adapter": registry.active_id,
            "resumable": runs}
    if as_json(args):
        return emit(args, out, data, "")
    lines = ["Training data (train / held out):"]
    for m in METHODS:
        d = summary.of(m)
        state = "ready" if d.ready else f"needs {d.missing} more"
        lines.append(f"  {m.upper():<4} {d.train:>5} / {d.eval:<5} {state:<16} {d.describe()}")
    if summary.of(auto_method).ready:
        lines.append(f"Auto would train {auto_reason}")
    else:
        lines.append(f"Auto: {auto_reason}")
    if configured != "auto":
        lines.append(f"Settings → Training chooses {configured.upper()}; "
                     "`ghostdesk train --method auto` lets Auto choose.")
    active = registry.active_id
    lines.append(f"Active adapter: {active or 'none (the base model)'}")
    if runs:
        lines.append("Runs that can resume:")
        lines += [f"  {r['run_id']}  {r['method'].upper()}, {r['preset']} preset, checkpoint "
                  f"at step {r['step']}:  {r['resume']}" for r in runs]
    return emit(args, out, data, "\n".join(lines))


def _train_discard(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.core.training.run_config import RunConfig
    from ghostdesk.core.training.run_folders import discard_run, runs_folder

    run_id = args.discard
    folder = runs_folder(services.paths.root) / run_id
    if "/" in run_id or "\\" in run_id or run_id in (".", "..") \
            or not (folder / "run.json").is_file():
        raise TrainingError(f"There is no training run {run_id!r}.",
                            hint="`ghostdesk train --status` lists the runs that can resume.")
    cfg = RunConfig.load(folder / "run.json")
    if not args.yes:
        if not stdin_is_tty():
            raise TrainingError("Discarding a run needs confirmation.",
                                hint="Add --yes to confirm.")
        step = last_checkpoint_step(cfg)
        what = f" and its checkpoint at step {step}" if step else ""
        if not confirm(f"Discard run {run_id}{what}? Its training can't be resumed "
                        "afterwards.", out):
            print("Kept.", file=out)
            return 1
    discard_run(cfg)
    return emit(args, out, {"discarded": run_id}, f"Discarded run {run_id}.")

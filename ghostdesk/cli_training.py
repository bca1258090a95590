"""`ghostdesk train ...` and `ghostdesk adapters ...`: the learning loop from a terminal.

The same TrainingPlanner, training child and AdapterRegistry as the Training pane. The CLI
holds no loaded model, so choosing an adapter here changes the registry only: the chat
applies it when it next starts. Every verb takes --json.

Exit codes of `train`: 0 completed or paused at a checkpoint, 1 the run failed, 2 refused
(too little feedback, a bad option, an unknown run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ghostdesk.core.errors import AdapterError, GhostDeskError, TrainingError

if TYPE_CHECKING:
    from ghostdesk.app import AppServices
    from ghostdesk.core.training.registry import AdapterRecord
    from ghostdesk.core.training.run_config import RunConfig

_PLAN_OPTIONS = ("method", "preset", "steps", "adopt", "base", "device")


def add_training_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
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
    train.add_argument("--steps", type=_positive_int, metavar="N",
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

    adapters = verbs.add_parser("adapters", parents=[common],
                                help="trained adapters: list, activate, roll back, delete")
    actions = adapters.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, run: Any, help_text: str, *, with_id: bool = False) -> Any:
        parser = actions.add_parser(name, parents=[common], help=help_text)
        if with_id:
            parser.add_argument("id", metavar="ID", help="adapter id (see `ghostdesk adapters "
                                                         "list`)")
        parser.set_defaults(run=run)
        return parser

    action("list", _cmd_list, "every adapter, newest first; * marks the active one")
    action("activate", _cmd_activate, "make the chat use this adapter", with_id=True)
    action("deactivate", _cmd_deactivate, "make the chat use the base model")
    action("rollback", _cmd_rollback, "go back to the adapter active before this one")
    delete = action("delete", _cmd_delete, "delete an adapter that is not active", with_id=True)
    delete.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    evaluate = action("eval", _cmd_eval, "measure an adapter again on held-out feedback",
                      with_id=True)
    evaluate.add_argument("--against", metavar="ID",
                          help="compare with this adapter (default: the base model)")
    evaluate.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, not {text!r}")
    return value


def _as_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def _out(args: argparse.Namespace, out: TextIO, data: Any, text: str) -> int:
    print(json.dumps(data, ensure_ascii=False, default=str) if _as_json(args) else text,
          file=out)
    return 0


def _confirm(question: str, out: TextIO) -> bool:
    """Ask a yes/no question on a terminal; anything but y / yes is no."""
    print(f"{question} [y/N] ", end="", file=out, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _stdin_is_tty() -> bool:
    try:
        return bool(sys.stdin and sys.stdin.isatty())
    except (AttributeError, ValueError):
        return False


# --- train ----------------------------------------------------------------------------------

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
        if not _as_json(args):
            step = _checkpoint_step(cfg)
            print(f"Resuming run {cfg.run_id} ({cfg.method.upper()}, {cfg.preset} preset) "
                  f"from its checkpoint at step {step}.", file=out)
            print(f"Log: {cfg.log_file}", file=out, flush=True)
        return _run(cfg, services, out, args, resumed=True)

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
    if not _as_json(args):
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
    return _run(cfg, services, out, args, resumed=False)


_ADOPT_WORDS = {"auto": "a better adapter is activated", "ask": "you decide",
                "never": "the adapter is only kept"}


def _base_words(base: str) -> str:
    return "the chat model" if base == "auto" else base


def _resumable(services: AppServices, run_id: str) -> RunConfig:
    from ghostdesk.core.training.launcher import resumable_runs

    runs = resumable_runs(services.paths.root)
    for cfg in runs:
        if cfg.run_id == run_id:
            return cfg
    hint = ("Runs that can resume: " + ", ".join(c.run_id for c in runs) + "."
            if runs else "No run can resume. Start a new one with: ghostdesk train")
    raise TrainingError(f"There is no paused run {run_id!r} to resume.", hint=hint)


def _checkpoint_step(cfg: RunConfig) -> int:
    from ghostdesk.core.training.launcher import last_checkpoint_step

    return last_checkpoint_step(cfg)


def _run(cfg: RunConfig, services: AppServices, out: TextIO, args: argparse.Namespace, *,
         resumed: bool) -> int:
    """Start the child, show its events, stop it gracefully on Ctrl+C, then deal with the
    adapter it saved."""
    from ghostdesk.core.training.launcher import TrainingProcess, discard_run
    from ghostdesk.core.training.planner import AdoptionTracker

    as_json = _as_json(args)
    ctrl_c = _CtrlCPauses()
    with ctrl_c:
        try:
            proc = TrainingProcess.start(cfg)
        except TrainingError as err:
            if not resumed:
                discard_run(cfg)  # never started: nothing in it to resume
            return _report_failure(args, out, cfg, reason=err.message, hint=err.hint or "")
        ctrl_c.attach(proc)
        view = _RunView(out, as_json)
        tracker = AdoptionTracker()
        with proc:
            try:
                for event in proc.events():
                    view.show(event)
                    tracker.feed(event)
            except KeyboardInterrupt:
                # Raised where Ctrl+C could not be taken over (not the main thread).
                ctrl_c.presses += 1
                _say_pausing()
                try:
                    proc.stop()
                except KeyboardInterrupt:
                    proc.kill()
                # Its last words (a Finished "stopped" naming the checkpoint) are still in
                # the pipe.
                with contextlib.suppress(KeyboardInterrupt):
                    for event in proc.events():
                        view.show(event)
                        tracker.feed(event)
    interrupted = ctrl_c.presses > 0

    terminal = view.terminal
    summary: dict[str, Any] = {"event": "summary", "run_id": cfg.run_id, "method": cfg.method,
                               "log": str(cfg.log_file), "adapter_id": tracker.adapter_id or None,
                               "decision": tracker.decision, "active": False, "resume": None}
    if tracker.saved is not None:
        summary["active"] = _adopt(tracker, services, out, as_json)
        if not summary["active"]:
            summary["activate"] = f"ghostdesk adapters activate {tracker.adapter_id}"
    if terminal is not None and terminal.kind == "finished" and terminal.status == "completed":
        summary["status"] = "completed"
        code = 0
    elif terminal is not None and terminal.kind == "failed" and not interrupted:
        summary["status"] = "failed"
        summary.update(reason=terminal.reason, hint=terminal.hint)
        code = _show_failure(out, as_json, cfg, terminal.reason, terminal.hint)
        if _checkpoint_step(cfg):
            summary["resume"] = _resume_command(cfg)
    elif terminal is None and not interrupted:
        summary["status"] = "failed"
        summary["reason"] = "The training process ended without reporting a result."
        code = _show_failure(out, as_json, cfg, summary["reason"], "Start the training again.")
    else:
        # Stopped: by Ctrl+C here, or by a STOP file or a signal from elsewhere.
        summary["status"] = "stopped"
        code = 0
        step = _checkpoint_step(cfg)
        if step:
            summary["resume"] = _resume_command(cfg)
            summary["step"] = step
            if not as_json:
                print(f"Paused at a checkpoint (step {step}). Go on with:\n"
                      f"  {_resume_command(cfg)}\n"
                      f"or drop it with: ghostdesk train --discard {cfg.run_id}", file=out)
        else:
            if not resumed:
                discard_run(cfg)
            if not as_json:
                print("Stopped before the first checkpoint: nothing was trained yet, so there "
                      "is nothing to resume. Start again with: ghostdesk train", file=out)
    if as_json:
        print(json.dumps(summary, ensure_ascii=False), file=out, flush=True)
    return code


class _CtrlCPauses:
    """While a run lasts, Ctrl+C asks the child to pause at a checkpoint (it finishes the
    current step and saves one), and the events go on to its Finished "stopped"; a second
    Ctrl+C ends the child at once. Taking the signal over, rather than letting
    KeyboardInterrupt land between two lines of the event loop, loses no event (a Saved
    among them). Only the main thread can take it over; elsewhere KeyboardInterrupt is
    handled by the loop."""

    def __init__(self) -> None:
        self.presses = 0
        self._proc: Any = None
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> _CtrlCPauses:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def attach(self, proc: Any) -> None:
        self._proc = proc
        if self.presses:  # pressed while the child was starting
            proc.request_stop()

    def _on_sigint(self, _signum: int, _frame: Any) -> None:
        self.presses += 1
        if self.presses == 1:
            _say_pausing()
            if self._proc is not None:
                self._proc.request_stop()
        elif self._proc is not None:
            print("Ending the training now.", file=sys.stderr, flush=True)
            self._proc.kill()


def _say_pausing() -> None:
    print("\nPausing: the current step finishes and a checkpoint is saved (Ctrl+C again "
          "ends the training at once)…", file=sys.stderr, flush=True)


def _resume_command(cfg: RunConfig) -> str:
    return f"ghostdesk train --resume {cfg.run_id}"


def _show_failure(out: TextIO, as_json: bool, cfg: RunConfig, reason: str, hint: str) -> int:
    if not as_json:
        print(f"error: Training failed: {reason}", file=sys.stderr)
        if hint:
            print(hint, file=sys.stderr)
        print(f"The log: {cfg.log_file}", file=sys.stderr)
        if _checkpoint_step(cfg):
            print(f"It can go on from its last checkpoint: {_resume_command(cfg)}",
                  file=sys.stderr)
    return 1


def _report_failure(args: argparse.Namespace, out: TextIO, cfg: RunConfig, *, reason: str,
                    hint: str) -> int:
    if _as_json(args):
        print(json.dumps({"event": "summary", "run_id": cfg.run_id, "status": "failed",
                          "reason": reason, "hint": hint}, ensure_ascii=False), file=out)
        return 1
    return _show_failure(out, False, cfg, reason, hint)


def _adopt(tracker: Any, services: AppServices, out: TextIO, as_json: bool) -> bool:
    """Act on the evaluation's decision for the saved adapter; True when it became active."""
    adapter_id = tracker.adapter_id
    decision = tracker.decision
    if decision == "activate":
        services.adapters.set_active(adapter_id)
        if not as_json:
            print(f"Adapter {adapter_id} is now active: the chat uses it from its next start. "
                  "Undo with: ghostdesk adapters rollback", file=out)
        return True
    if decision == "ask":
        if not as_json and _stdin_is_tty() and _confirm("Use the new adapter now?", out):
            services.adapters.set_active(adapter_id)
            print(f"Adapter {adapter_id} is now active: the chat uses it from its next start. "
                  "Undo with: ghostdesk adapters rollback", file=out)
            return True
        if not as_json:
            print(f"Adapter {adapter_id} is saved but not active. Use it with:\n"
                  f"  ghostdesk adapters activate {adapter_id}", file=out)
        return False
    if not as_json:
        evaluated = tracker.evaluated
        reason = evaluated.reason if evaluated is not None else ""
        # Better and still not activated: the adopt setting is "never" (only keep).
        why = (' as the adopt setting is "never"' if evaluated is not None
               and evaluated.recommended else "")
        print(f"Adapter {adapter_id} was kept but not activated{why}"
              + (f": {reason}" if reason else ".")
              + f"\nUse it anyway with: ghostdesk adapters activate {adapter_id}", file=out)
    return False


class _RunView:
    """Prints a run's events: one line each for people, or the child's own JSON lines."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.terminal: Any = None

    def show(self, event: Any) -> None:
        from ghostdesk.core.training.events import TERMINAL, encode

        if event.kind in TERMINAL:
            self.terminal = event
        if self.as_json:
            print(encode(event), file=self.out, flush=True)
            return
        text = getattr(self, f"_{event.kind}")(event)
        if text:
            print(text, file=self.out, flush=True)

    def _preparing(self, e: Any) -> str:
        return f"· {e.stage}"

    def _started(self, e: Any) -> str:
        base = "the chat model" if e.base == "gguf" else "the Hugging Face folder"
        lines = [f"Started: {e.method.upper()}, {e.preset} preset, on {e.device}"
                 f"{' in 4 bits' if e.load_in_4bit else ''} from {base}; "
                 f"{e.train_examples} training examples, {e.eval_examples} held out, "
                 f"{e.max_steps} steps."]
        if e.resumed_from_step:
            lines.append(f"  Going on from step {e.resumed_from_step}.")
        if e.chat_tokens_checked and not e.chat_tokens_match:
            lines.append("  warning: the training tokenizer splits the chat text differently "
                         "from llama.cpp; the adapter may have less effect in the chat.")
        return "\n".join(lines)

    def _step(self, e: Any) -> str:
        parts = [f"step {e.step}/{e.max_steps}", f"loss {e.loss:.4f}"]
        if e.reward_margin is not None:
            parts.append(f"reward margin {e.reward_margin:+.3f}")
        parts.append(f"{e.tokens_per_second:.1f} tok/s")
        parts.append(f"ETA {_duration(e.eta_s)}")
        return "  ".join(parts)

    def _evaluated(self, e: Any) -> str:
        previous = f"adapter {e.previous_adapter}" if e.previous_adapter else "the base model"
        lines = [f"Held-out check on {e.examples} examples: accuracy {_pct(e.accuracy)} "
                 f"(vs {_pct(e.previous_accuracy)} for {previous}), reward margin "
                 f"{_signed(e.reward_margin)} (vs {_signed(e.previous_reward_margin)}).",
                 f"  {e.reason}"]
        if e.samples:
            lines.append("Side by side (greedy answers to held-out prompts):")
            for s in e.samples:
                lines.append(f"  prompt:  {_one_line(s.get('prompt', ''))}")
                lines.append(f"    base:    {_one_line(s.get('base', ''))}")
                lines.append(f"    adapter: {_one_line(s.get('adapter', ''))}")
        return "\n".join(lines)

    def _saved(self, e: Any) -> str:
        return f"Saved adapter {e.adapter_id} ({e.path})."

    def _finished(self, e: Any) -> str:
        if e.status != "completed":
            return ""  # the pause message comes after the events
        return (f"Finished in {_duration(e.seconds)}: {e.step} steps, "
                f"{e.tokens_per_second:.1f} training tokens/s, peak memory "
                f"{e.peak_rss_mb:,.0f} MiB.")

    def _failed(self, e: Any) -> str:
        return ""  # said once, after the events (with the log's path)


def _duration(seconds: float | None) -> str:
    s = max(0, int(round(seconds or 0)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def _one_line(text: str, limit: int = 160) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _train_status(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.core.training.launcher import resumable_runs
    from ghostdesk.core.training.planner import choose_method
    from ghostdesk.core.training.run_config import METHODS

    planner = services.training_planner()
    summary = planner.summary()
    auto_method, auto_reason = choose_method(summary)
    configured = services.settings.training.method
    registry = services.adapters
    runs = [{"run_id": c.run_id, "method": c.method, "preset": c.preset,
             "step": _checkpoint_step(c), "resume": _resume_command(c)}
            for c in resumable_runs(services.paths.root)]
    data = {"methods": summary.to_json(),
            "auto": {"method": auto_method, "reason": auto_reason,
                     "ready": summary.of(auto_method).ready},
            "settings_method": configured, "active_adapter": registry.active_id,
            "resumable": runs}
    if _as_json(args):
        return _out(args, out, data, "")
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
    return _out(args, out, data, "\n".join(lines))


def _train_discard(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.core.training.launcher import discard_run, runs_folder
    from ghostdesk.core.training.run_config import RunConfig

    run_id = args.discard
    folder = runs_folder(services.paths.root) / run_id
    if "/" in run_id or "\\" in run_id or run_id in (".", "..") \
            or not (folder / "run.json").is_file():
        raise TrainingError(f"There is no training run {run_id!r}.",
                            hint="`ghostdesk train --status` lists the runs that can resume.")
    cfg = RunConfig.load(folder / "run.json")
    if not args.yes:
        if not _stdin_is_tty():
            raise TrainingError("Discarding a run needs confirmation.",
                                hint="Add --yes to confirm.")
        step = _checkpoint_step(cfg)
        what = f" and its checkpoint at step {step}" if step else ""
        if not _confirm(f"Discard run {run_id}{what}? Its training can't be resumed "
                        "afterwards.", out):
            print("Kept.", file=out)
            return 1
    discard_run(cfg)
    return _out(args, out, {"discarded": run_id}, f"Discarded run {run_id}.")


# --- adapters -------------------------------------------------------------------------------

def _record_json(record: AdapterRecord, active: str | None) -> dict[str, Any]:
    return {**record.to_dict(), "path": record.path, "active": record.id == active}


def _counts_words(record: AdapterRecord) -> str:
    c = record.data_counts
    n = c.get("train_examples", c.get("examples"))
    if n is None:
        return "data n/a"
    liked = c.get("desirable", c.get("train_desirable"))
    disliked = c.get("undesirable", c.get("train_undesirable"))
    noun = "pairs" if record.method == "dpo" else "examples"
    text = f"{n} {noun}"
    if liked is not None and disliked is not None:
        text += f" ({liked} 👍 / {disliked} 👎)"
    held = c.get("eval_examples")
    if held is not None:
        text += f", {held} held out"
    return text


def _metrics_words(record: AdapterRecord) -> str:
    m = record.metrics
    if m.get("accuracy") is None:
        return "not measured"
    text = f"accuracy {m['accuracy'] * 100:.0f} %"
    if m.get("previous_accuracy") is not None:
        text += f" (was {m['previous_accuracy'] * 100:.0f} %)"
    return text


def _line(record: AdapterRecord, active: str | None, width: int = 0) -> str:
    mark = "*" if record.id == active else " "
    created = record.created[:16].replace("T", " ")
    parent = f"after {record.parent}" if record.parent else "after the base model"
    return (f"{mark} {record.id:<{width}}  {created}  {record.method.upper():<4} "
            f"{_counts_words(record)}  {_metrics_words(record)}  {parent}")


def _cmd_list(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    registry = services.adapters
    records = registry.list()
    active = registry.active_id
    if _as_json(args):
        return _out(args, out, [_record_json(r, active) for r in records], "")
    if not records:
        print("No adapters yet. Train one with: ghostdesk train", file=out)
        return 0
    width = max(len(r.id) for r in records)
    lines = [_line(r, active, width) for r in records]
    target = registry.rollback_target()
    if active:
        back = target.id if target is not None else "the base model"
        lines.append(f"\n* is active: the chat uses it when it starts. Rollback goes to {back}.")
    else:
        lines.append("\nNo adapter is active: the chat uses the base model.")
    print("\n".join(lines), file=out)
    return 0


def _model_warning(services: AppServices, record: AdapterRecord) -> str:
    """Why the chat would not apply this adapter to the configured model ("" if it would, or
    when the model file can't be read now)."""
    from ghostdesk.core.llm.engine import resolve_model_path
    from ghostdesk.core.llm.fingerprint import model_sha256

    if not record.base_sha256:
        return ""
    try:
        path = resolve_model_path(services.settings.model)
        if not path.is_file():
            return ""
        # Hashing reads the model file once (cached by path, size and mtime afterwards).
        sha = model_sha256(path, services.paths.cache)
    except (GhostDeskError, OSError):
        return ""
    if sha == record.base_sha256:
        return ""
    made_for = record.base_name or "another model file"
    return (f"Adapter {record.id} was trained for {made_for}, not {path.name}: the chat "
            "applies it only when that model is loaded.")


def _cmd_activate(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    registry = services.adapters
    record = registry.get(args.id)
    warning = _model_warning(services, record)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    registry.set_active(record.id)
    return _out(args, out, {**_record_json(record, record.id), "warning": warning or None},
                f"Adapter {record.id} is now active: the chat uses it from its next start "
                "(an open window keeps its current adapter until then).")


def _cmd_deactivate(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    registry = services.adapters
    was = registry.active_id
    registry.set_active(None)
    text = (f"Adapter {was} is no longer active: the chat uses the base model from its next "
            "start." if was else "No adapter was active: the chat uses the base model.")
    return _out(args, out, {"active": None, "was": was}, text)


def _cmd_rollback(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    registry = services.adapters
    was = registry.active_id
    if was is None and registry.rollback_target() is None:
        return _out(args, out, {"active": None, "was": None},
                    "No adapter is active and none was before: nothing to roll back.")
    now = registry.rollback()
    where = f"adapter {now.id}" if now is not None else "the base model"
    text = (f"Rolled back from {f'adapter {was}' if was else 'the base model'} to {where}: "
            "the chat uses it from its next start.")
    return _out(args, out, {"active": now.id if now else None, "was": was}, text)


def _cmd_delete(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    registry = services.adapters
    record = registry.get(args.id)
    if registry.active_id == record.id:
        raise AdapterError(f"Adapter {record.id} is the active one, so it can't be deleted.",
                           hint="Switch away from it first with `ghostdesk adapters rollback` "
                                "(to the one before it) or `ghostdesk adapters deactivate` (to "
                                "the base model), then delete it.")
    if not args.yes:
        if not _stdin_is_tty():
            raise AdapterError("Deleting an adapter needs confirmation.",
                               hint="Add --yes to confirm.")
        if not _confirm(f"Delete adapter {record.id} ({record.method.upper()}, "
                        f"{record.created[:10]})? This cannot be undone.", out):
            print("Kept.", file=out)
            return 1
    registry.delete(record.id)
    return _out(args, out, {"deleted": record.id}, f"Deleted adapter {record.id}.")


def _cmd_eval(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.core.feedback.datasets import DatasetOptions, export_dataset
    from ghostdesk.core.llm.engine import resolve_model_path
    from ghostdesk.core.training import job

    registry = services.adapters
    record = registry.get(args.id)
    if args.against == record.id:
        raise AdapterError("An adapter can't be compared with itself.",
                           hint="Leave out --against to compare with the base model.")
    other = registry.get(args.against) if args.against else None
    chat_model = resolve_model_path(services.settings.model)
    options = DatasetOptions(system_prompt=services.settings.persona.rendered_system_prompt(),
                             split="eval")
    with tempfile.TemporaryDirectory(prefix="ghostdesk-eval-") as tmp:
        eval_file = Path(tmp) / "eval.jsonl"
        try:
            n = export_dataset(services.db, record.method, eval_file, options)
        except GhostDeskError as err:
            raise TrainingError(f"There is no held-out {record.method.upper()} feedback to "
                                f"measure adapter {record.id} on.",
                                hint="About one conversation in ten is held out of training; "
                                     "rate replies in more conversations.") from err
        against = f"adapter {other.id}" if other is not None else "the base model"
        if not _as_json(args):
            print(f"Measuring adapter {record.id} against {against} on {n} held-out "
                  f"{record.method.upper()} examples…", file=sys.stderr, flush=True)
        result = job.evaluate_saved_adapter(
            services.paths.root, record.id, eval_file, chat_model=str(chat_model),
            compare_with=other.id if other is not None else "", device=args.device)
    data = {"adapter": record.id, "against": other.id if other is not None else None,
            "method": record.method, "examples": result.candidate.examples,
            "accuracy": result.candidate.accuracy,
            "reward_margin": result.candidate.reward_margin,
            "previous_accuracy": result.previous.accuracy,
            "previous_reward_margin": result.previous.reward_margin,
            "better": result.decision.recommended, "reason": result.decision.reason}
    text = (f"Adapter {record.id}: accuracy {_pct(result.candidate.accuracy)}, reward margin "
            f"{_signed(result.candidate.reward_margin)} on {result.candidate.examples} held-out "
            f"examples\n{against[0].upper() + against[1:]}: accuracy "
            f"{_pct(result.previous.accuracy)}, reward margin "
            f"{_signed(result.previous.reward_margin)}\n{result.decision.reason}")
    return _out(args, out, data, text)

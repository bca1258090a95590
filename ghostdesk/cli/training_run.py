"""Runs one training child from the terminal: shows its events, pauses it at a checkpoint on
Ctrl+C, and acts on the evaluation's adoption decision afterwards."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from ghostdesk.cli import output
from ghostdesk.cli.output import (
    confirm,
    duration,
    json_text,
    one_line,
    percent,
    signed,
    stdin_is_tty,
)
from ghostdesk.core.errors import TrainingError
from ghostdesk.core.training.run_folders import last_checkpoint_step

if TYPE_CHECKING:
    from ghostdesk.core.training.run_config import RunConfig
    from ghostdesk.services import AppServices


def run_training(cfg: RunConfig, services: AppServices, out: TextIO, args: argparse.Namespace, *,
                 resumed: bool) -> int:
    """Start the child, show its events, stop it gracefully on Ctrl+C, then deal with the
    adapter it saved."""
    from ghostdesk.core.training.launcher import TrainingProcess
    from ghostdesk.core.training.planner import AdoptionTracker
    from ghostdesk.core.training.run_folders import discard_run

    as_json = output.as_json(args)
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
    outcome = proc.outcome
    # No outcome: a second Ctrl+C cut the child's last words short.
    status = outcome.status if outcome is not None else "stopped"

    summary: dict[str, Any] = {"event": "summary", "run_id": cfg.run_id, "method": cfg.method,
                               "log": str(cfg.log_file), "adapter_id": tracker.adapter_id or None,
                               "decision": tracker.decision, "active": False, "resume": None}
    if tracker.saved is not None:
        summary["active"] = _adopt(tracker, services, out, as_json)
        if not summary["active"]:
            summary["activate"] = f"ghostdesk adapters activate {tracker.adapter_id}"
    summary["status"] = status
    code = 0
    if outcome is not None and status == "failed":
        summary.update(reason=outcome.reason, hint=outcome.hint)
        code = _show_failure(out, as_json, cfg, outcome.reason, outcome.hint)
        if last_checkpoint_step(cfg):
            summary["resume"] = resume_command(cfg)
    elif status == "stopped":
        # Stopped: by Ctrl+C here, or by a STOP file or a signal from elsewhere.
        step = last_checkpoint_step(cfg)
        if step:
            summary["resume"] = resume_command(cfg)
            summary["step"] = step
            if not as_json:
                print(f"Paused at a checkpoint (step {step}). Go on with:\n"
                      f"  {resume_command(cfg)}\n"
                      f"or drop it with: ghostdesk train --discard {cfg.run_id}", file=out)
        else:
            if not resumed:
                discard_run(cfg)
            if not as_json:
                print("Stopped before the first checkpoint: nothing was trained yet, so there "
                      "is nothing to resume. Start again with: ghostdesk train", file=out)
    if as_json:
        print(json_text(summary, ensure_ascii=False), file=out, flush=True)
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


def resume_command(cfg: RunConfig) -> str:
    return f"ghostdesk train --resume {cfg.run_id}"


def _show_failure(out: TextIO, as_json: bool, cfg: RunConfig, reason: str, hint: str) -> int:
    if not as_json:
        print(f"error: Training failed: {reason}", file=sys.stderr)
        if hint:
            print(hint, file=sys.stderr)
        print(f"The log: {cfg.log_file}", file=sys.stderr)
        if last_checkpoint_step(cfg):
            print(f"It can go on from its last checkpoint: {resume_command(cfg)}",
                  file=sys.stderr)
    return 1


def _report_failure(args: argparse.Namespace, out: TextIO, cfg: RunConfig, *, reason: str,
                    hint: str) -> int:
    if output.as_json(args):
        print(json_text({"event": "summary", "run_id": cfg.run_id, "status": "failed",
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
        if not as_json and stdin_is_tty() and confirm("Use the new adapter now?", out):
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

    def show(self, event: Any) -> None:
        from ghostdesk.core.training.events import encode

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
        parts.append(f"ETA {duration(e.eta_s)}")
        return "  ".join(parts)

    def _evaluated(self, e: Any) -> str:
        previous = f"adapter {e.previous_adapter}" if e.previous_adapter else "the base model"
        lines = [f"Held-out check on {e.examples} examples: accuracy {percent(e.accuracy)} "
                 f"(vs {percent(e.previous_accuracy)} for {previous}), reward margin "
                 f"{signed(e.reward_margin)} (vs {signed(e.previous_reward_margin)}).",
                 f"  {e.reason}"]
        if e.samples:
            lines.append("Side by side (greedy answers to held-out prompts):")
            for s in e.samples:
                lines.append(f"  prompt:  {one_line(s.get('prompt', ''))}")
                lines.append(f"    base:    {one_line(s.get('base', ''))}")
                lines.append(f"    adapter: {one_line(s.get('adapter', ''))}")
        return "\n".join(lines)

    def _saved(self, e: Any) -> str:
        return f"Saved adapter {e.adapter_id} ({e.path})."

    def _finished(self, e: Any) -> str:
        if e.status != "completed":
            return ""  # the pause message comes after the events
        return (f"Finished in {duration(e.seconds)}: {e.step} steps, "
                f"{e.tokens_per_second:.1f} training tokens/s, peak memory "
                f"{e.peak_rss_mb:,.0f} MiB.")

    def _failed(self, e: Any) -> str:
        return ""  # said once, after the events (with the log's path)

"""`ghostdesk adapters ...`: list, activate, deactivate, roll back, delete and re-measure the
trained adapters. The CLI holds no loaded model, so a choice made here changes the registry
only: the chat applies it when it next starts."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ghostdesk.cli.output import as_json, confirm, emit, percent, signed, stdin_is_tty
from ghostdesk.core.errors import AdapterError, GhostDeskError, TrainingError

if TYPE_CHECKING:
    from ghostdesk.core.training.registry import AdapterRecord
    from ghostdesk.services import AppServices


def add_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
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
    if as_json(args):
        return emit(args, out, [_record_json(r, active) for r in records], "")
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
    return emit(args, out, {**_record_json(record, record.id), "warning": warning or None},
                f"Adapter {record.id} is now active: the chat uses it from its next start "
                "(an open window keeps its current adapter until then).")


def _cmd_deactivate(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    registry = services.adapters
    was = registry.active_id
    registry.set_active(None)
    text = (f"Adapter {was} is no longer active: the chat uses the base model from its next "
            "start." if was else "No adapter was active: the chat uses the base model.")
    return emit(args, out, {"active": None, "was": was}, text)


def _cmd_rollback(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    registry = services.adapters
    was = registry.active_id
    if was is None and registry.rollback_target() is None:
        return emit(args, out, {"active": None, "was": None},
                    "No adapter is active and none was before: nothing to roll back.")
    now = registry.rollback()
    where = f"adapter {now.id}" if now is not None else "the base model"
    text = (f"Rolled back from {f'adapter {was}' if was else 'the base model'} to {where}: "
            "the chat uses it from its next start.")
    return emit(args, out, {"active": now.id if now else None, "was": was}, text)


def _cmd_delete(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    registry = services.adapters
    record = registry.get(args.id)
    if registry.active_id == record.id:
        raise AdapterError(f"Adapter {record.id} is the active one, so it can't be deleted.",
                           hint="Switch away from it first with `ghostdesk adapters rollback` "
                                "(to the one before it) or `ghostdesk adapters deactivate` (to "
                                "the base model), then delete it.")
    if not args.yes:
        if not stdin_is_tty():
            raise AdapterError("Deleting an adapter needs confirmation.",
                               hint="Add --yes to confirm.")
        if not confirm(f"Delete adapter {record.id} ({record.method.upper()}, "
                        f"{record.created[:10]})? This cannot be undone.", out):
            print("Kept.", file=out)
            return 1
    registry.delete(record.id)
    return emit(args, out, {"deleted": record.id}, f"Deleted adapter {record.id}.")


def _cmd_eval(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.core.feedback.datasets import DatasetOptions, export_dataset
    from ghostdesk.core.llm.engine import resolve_model_path
    from ghostdesk.core.training.job import evaluate as job_evaluate

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
        if not as_json(args):
            print(f"Measuring adapter {record.id} against {against} on {n} held-out "
                  f"{record.method.upper()} examples…", file=sys.stderr, flush=True)
        result = job_evaluate.evaluate_saved_adapter(
            services.paths.root, record.id, eval_file, chat_model=str(chat_model),
            compare_with=other.id if other is not None else "", device=args.device)
    data = {"adapter": record.id, "against": other.id if other is not None else None,
            "method": record.method, "examples": result.candidate.examples,
            "accuracy": result.candidate.accuracy,
            "reward_margin": result.candidate.reward_margin,
            "previous_accuracy": result.previous.accuracy,
            "previous_reward_margin": result.previous.reward_margin,
            "better": result.decision.recommended, "reason": result.decision.reason}
    text = (f"Adapter {record.id}: accuracy {percent(result.candidate.accuracy)}, reward margin "
            f"{signed(result.candidate.reward_margin)} on {result.candidate.examples} held-out "
            f"examples\n{against[0].upper() + against[1:]}: accuracy "
            f"{percent(result.previous.accuracy)}, reward margin "
            f"{signed(result.previous.reward_margin)}\n{result.decision.reason}")
    return emit(args, out, data, text)

"""`ghostdesk rate ...` and `ghostdesk feedback ...`: ratings, implicit signals, reward weights
and training datasets."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from ghostdesk.cli.output import as_json, emit
from ghostdesk.core.errors import GhostDeskError

if TYPE_CHECKING:
    from ghostdesk.services import AppServices


def add_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    rate = verbs.add_parser("rate", parents=[common], help="rate a companion reply")
    rate.add_argument("message_id", type=int, metavar="MESSAGE_ID")
    rate.add_argument("rating", choices=("up", "down", "laugh", "clear"),
                      help="👍 up, 👎 down, 😂 laugh; clear turns all three off")
    rate.add_argument("--off", action="store_true", help="take this rating back")
    rate.set_defaults(run=_cmd_rate)

    fb = verbs.add_parser("feedback", parents=[common],
                          help="feedback signals, reward weights and training datasets")
    fb_verbs = fb.add_subparsers(dest="action", metavar="ACTION", required=True)
    fb_list = fb_verbs.add_parser("list", parents=[common], help="feedback events, newest first")
    fb_list.add_argument("--pending", action="store_true",
                         help="only signals waiting to be confirmed or dismissed")
    fb_list.add_argument("--message", type=int, metavar="ID", help="only this reply's feedback")
    fb_list.add_argument("--limit", type=int, default=50)
    fb_list.set_defaults(run=_cmd_feedback_list)
    for name, helptext in (("confirm", "agree with implicit signals"),
                           ("dismiss", "reject implicit signals: they never reach training")):
        decide = fb_verbs.add_parser(name, parents=[common], help=helptext)
        decide.add_argument("event_ids", type=int, nargs="+", metavar="EVENT_ID")
        decide.set_defaults(run=_cmd_feedback_decide)
    comment = fb_verbs.add_parser("comment", parents=[common], help="comment on a reply")
    comment.add_argument("message_id", type=int, metavar="MESSAGE_ID")
    comment.add_argument("text", help='the comment ("" removes it)')
    comment.set_defaults(run=_cmd_feedback_text, field="comment")
    better = fb_verbs.add_parser("better-reply", parents=[common],
                                 help="write a better version of a reply")
    better.add_argument("message_id", type=int, metavar="MESSAGE_ID")
    better.add_argument("text", help='your version of the reply ("" removes it)')
    better.set_defaults(run=_cmd_feedback_text, field="better_reply")
    fb_verbs.add_parser("summary", parents=[common],
                        help="totals and training examples").set_defaults(run=_cmd_feedback_summary)
    weights = fb_verbs.add_parser("weights", parents=[common],
                                  help="show the reward weights, or set one")
    weights.add_argument("kind", nargs="?")
    weights.add_argument("value", nargs="?", type=float)
    weights.set_defaults(run=_cmd_feedback_weights)
    export_fb = fb_verbs.add_parser("export", parents=[common],
                                    help="write a training dataset as JSON Lines")
    export_fb.add_argument("--format", required=True, choices=("kto", "dpo", "sft"))
    export_fb.add_argument("--out", required=True, metavar="FILE.jsonl")
    export_fb.add_argument("--split", choices=("train", "eval", "all"), default="train",
                           help="train (default), eval (the held-out conversations) or all")
    export_fb.add_argument("--confirmed-only", action="store_true",
                           help="leave out implicit signals that were not confirmed")
    export_fb.add_argument("--best-replies", type=float, metavar="MIN_REWARD",
                           help="SFT: also the replies with at least this reward")
    export_fb.add_argument("--meta", action="store_true",
                           help='add a "meta" entry: message ids, rewards, split')
    export_fb.set_defaults(run=_cmd_feedback_export)


def _state_text(state) -> str:
    from ghostdesk.core.feedback.weights import rating_marks

    marks = rating_marks(state.ratings) or "not rated"
    parts = [f"Reply {state.message_id}: {marks}", f"reward {state.reward:+.2f}"]
    if state.comment:
        parts.append(f"comment: {state.comment}")
    if state.better_reply:
        parts.append("better reply written")
    pending = sum(1 for s in state.signals if s.status == "pending")
    if pending:
        parts.append(f"{pending} signal{'s' if pending > 1 else ''} to confirm")
    return " · ".join(parts)


def _cmd_rate(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    on = None if args.rating == "clear" else not args.off
    state = services.ledger.rate(args.message_id, args.rating, on=on)
    emit(args, out, state.to_json(), _state_text(state))
    return 0


def _warn_weight_problems(problems: Iterable[str]) -> None:
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)


def _event_line(item) -> str:
    from ghostdesk.core.feedback.weights import KIND_LABELS

    e = item.event
    label = KIND_LABELS.get(e.kind, e.kind)
    what = e.phrase and f' "{e.phrase}"' or (e.text and f": {e.text}") or ""
    when = e.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
    return (f"{e.id:>6}  {when}  reply {e.message_id:<6} {label}{what}  [{e.status}]"
            f"  — {item.reply.conversation_title}: {item.reply.excerpt}")


def _cmd_feedback_list(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    ledger = services.ledger
    # Replies left alone since the app last looked get their signal before listing.
    ledger.evaluate_abandonment(abandon_after_s=services.abandon_after_s())
    _warn_weight_problems(services.ledger.weights().problems)
    if args.pending:
        items = ledger.pending(limit=args.limit)
    else:
        items = ledger.events(message_id=args.message, limit=args.limit)
    if as_json(args):
        emit(args, out, [i.to_json() for i in items], "")
        return 0
    if not items:
        print("No signals to confirm." if args.pending else "No feedback yet.", file=out)
    for item in items:
        print(_event_line(item), file=out)
    if args.pending and items:
        print("\nConfirm with: ghostdesk feedback confirm ID…   Dismiss with: ghostdesk "
              "feedback dismiss ID…", file=out)
    return 0


def _cmd_feedback_decide(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    decide = services.ledger.confirm if args.action == "confirm" else services.ledger.dismiss
    events = [decide(event_id) for event_id in args.event_ids]
    text = "\n".join(f"{e.id}: {e.kind} on reply {e.message_id} is {e.status}" for e in events)
    emit(args, out, [e.to_json() for e in events], text)
    return 0


def _cmd_feedback_text(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    ledger = services.ledger
    setter = ledger.set_comment if args.field == "comment" else ledger.set_better_reply
    state = setter(args.message_id, args.text)
    emit(args, out, state.to_json(), _state_text(state))
    return 0


def _cmd_feedback_summary(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    summary = services.ledger.summary()
    counts = services.ledger.example_counts()
    if as_json(args):
        emit(args, out, {**summary.to_json(), "examples": counts.to_json()}, "")
        return 0
    e = summary.explicit
    print(f"👍 {e.get('up', 0)}  👎 {e.get('down', 0)}  😂 {e.get('laugh', 0)}  "
          f"comments {e.get('comment', 0)}  better replies {e.get('better_reply', 0)}", file=out)
    print(f"Replies with feedback: {summary.rated_replies}; total reward "
          f"{summary.total_reward:+.2f}; signals to confirm: {summary.pending}", file=out)
    for kind, by_status in sorted(summary.signals.items()):
        detail = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
        print(f"  {kind}: {detail}", file=out)
    print("Training examples (train / held out):", file=out)
    for name, label in (("kto_desirable", "KTO desirable"), ("kto_undesirable",
                        "KTO undesirable"), ("dpo_pairs", "DPO pairs"),
                        ("sft_examples", "SFT examples")):
        n = getattr(counts, name)
        print(f"  {label}: {n['train']} / {n['eval']}", file=out)
    _warn_weight_problems(summary.weight_problems)
    return 0


def _cmd_feedback_weights(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    if args.kind is not None and args.value is None:
        raise GhostDeskError("Give a value too, e.g.: ghostdesk feedback weights laugh 0.5")
    if args.kind is not None:
        weights = services.ledger.set_weight(args.kind, args.value)
    else:
        weights = services.ledger.weights()
    _warn_weight_problems(weights.problems)
    text = "\n".join(f"{kind:<13} {value:+g}" for kind, value in weights.values.items())
    emit(args, out, dict(weights.values), text)
    return 0


def _cmd_feedback_export(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.core.feedback.datasets import DatasetOptions, export_dataset

    if args.best_replies is not None and args.format != "sft":
        raise GhostDeskError("--best-replies only applies to --format sft.")
    options = DatasetOptions(
        system_prompt=services.settings.persona.rendered_system_prompt(),
        split=args.split,
        confirmed_only=args.confirmed_only,
        sft_min_reward=args.best_replies,
    )
    _warn_weight_problems(services.ledger.weights().problems)
    count = export_dataset(services.db, args.format, args.out, options, meta=args.meta)
    noun = "pair" if args.format == "dpo" else "example"
    emit(args, out,
          {"format": args.format, "path": args.out, "records": count, "split": args.split},
          f"Wrote {count} {args.format.upper()} {noun}{'s' if count != 1 else ''} "
          f"({args.split} split) to {args.out}")
    return 0

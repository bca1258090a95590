"""Headless command line: the same verbs as the window, over the same core objects.

    ghostdesk                      open the window
    ghostdesk chat [TEXT]          one-shot reply, or an interactive chat without TEXT
    ghostdesk conversations ...    list / show / export / rename / delete
    ghostdesk model info [PATH]    what a GGUF file is, read without loading it
    ghostdesk rate ID up|down|laugh|clear   rate a companion reply
    ghostdesk feedback ...         list / confirm / dismiss signals, export training data
    ghostdesk memory ...           list / search / edit / pin / forget / archive / import
    ghostdesk train [--status]     train a LoRA adapter on the feedback; --resume / --discard RUN
    ghostdesk adapters ...         list / activate / deactivate / rollback / delete / eval
    ghostdesk bench decode|gui|feedback|memory|learning|gpu
                                   benchmarks (figures go to docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from ghostdesk.core.errors import GhostDeskError

if TYPE_CHECKING:
    from ghostdesk.app import AppServices


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", metavar="PATH", default=argparse.SUPPRESS,
                        help="GGUF model file to use instead of the one in Settings")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output (JSON / JSON Lines)")

    parser = argparse.ArgumentParser(
        prog="ghostdesk", parents=[common],
        description="GhostDesk, a private AI companion. Without a command, opens the window.")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")

    chat = verbs.add_parser("chat", parents=[common], help="talk to the companion in the terminal")
    chat.add_argument("text", nargs="?", help="send this one message and print the reply")
    chat.add_argument("--conversation", "-c", type=int, metavar="ID",
                      help="continue this conversation (default: a new one)")
    chat.add_argument("--regenerate", action="store_true",
                      help="write a new version of the last reply of --conversation")
    chat.set_defaults(run=_cmd_chat)

    conv = verbs.add_parser("conversations", parents=[common], help="list, show, export chats")
    conv_verbs = conv.add_subparsers(dest="action", metavar="ACTION", required=True)
    conv_verbs.add_parser("list", parents=[common]).set_defaults(run=_cmd_conv_list)
    show = conv_verbs.add_parser("show", parents=[common])
    show.add_argument("id", type=int)
    show.set_defaults(run=_cmd_conv_show)
    export = conv_verbs.add_parser("export", parents=[common])
    export.add_argument("id", type=int)
    export.add_argument("--out", metavar="FILE", help="write JSON here instead of stdout")
    export.set_defaults(run=_cmd_conv_export)
    rename = conv_verbs.add_parser("rename", parents=[common])
    rename.add_argument("id", type=int)
    rename.add_argument("title")
    rename.set_defaults(run=_cmd_conv_rename)
    delete = conv_verbs.add_parser("delete", parents=[common])
    delete.add_argument("id", type=int)
    delete.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    delete.set_defaults(run=_cmd_conv_delete)

    model = verbs.add_parser("model", parents=[common], help="inspect GGUF model files")
    model_verbs = model.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = model_verbs.add_parser("info", parents=[common])
    info.add_argument("path", nargs="?", help="GGUF file (default: the configured model)")
    info.add_argument("--probe", action="store_true",
                      help="also test-load it with llama.cpp in a child process")
    info.set_defaults(run=_cmd_model_info)

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


    from ghostdesk.cli_bench import add_bench_verbs
    from ghostdesk.cli_memory import add_memory_verbs
    from ghostdesk.cli_training import add_training_verbs

    add_memory_verbs(verbs, common)
    add_training_verbs(verbs, common)
    add_bench_verbs(verbs, common)
    return parser


def dispatch(args: argparse.Namespace, services: AppServices, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    run: Callable[[argparse.Namespace, AppServices, TextIO], int] = args.run
    try:
        return run(args, services, out)
    except GhostDeskError as err:
        if getattr(args, "json", False):
            print(json.dumps({"error": err.message, "hint": err.hint}), file=out)
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _emit(out: TextIO, args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, ensure_ascii=False, default=str) if getattr(args, "json", False)
          else text, file=out)


# --- chat -----------------------------------------------------------------------------------

def _cmd_chat(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.core.companion import ReplySaved, ReplyStarted, TokenReceived, UserMessageSaved

    as_json = getattr(args, "json", False)
    store = services.store
    if args.conversation is not None:
        conversation = store.get_conversation(args.conversation)
    elif args.regenerate:
        raise GhostDeskError("--regenerate needs --conversation ID.")
    else:
        conversation = store.create_conversation(persona_name=services.settings.persona.name)
    engine = services.load_engine()
    companion = services.make_companion(engine)
    if not as_json:
        print(f"[{engine.info.model_name} · {engine.info.device_summary}]", file=sys.stderr)
        if engine.info.offload_reason:
            print(f"[{engine.info.offload_reason}]", file=sys.stderr)

    def run_turn(events) -> None:
        for event in events:
            if isinstance(event, TokenReceived):
                if as_json:
                    print(json.dumps({"event": "token", "text": event.text}, ensure_ascii=False),
                          file=out)
                else:
                    out.write(event.text)
                out.flush()
            elif isinstance(event, UserMessageSaved) and as_json:
                print(json.dumps({"event": "user_message_saved", "id": event.message.id,
                                  "conversation_id": conversation.id}), file=out)
            elif isinstance(event, ReplyStarted) and event.dropped_messages and not as_json:
                print(f"[{event.dropped_messages} earlier messages left out to fit the context]",
                      file=sys.stderr)
            elif isinstance(event, ReplySaved):
                m, s = event.message, event.stats
                if as_json:
                    print(json.dumps({
                        "event": "reply_saved", "id": m.id, "conversation_id": conversation.id,
                        "text": m.content, "status": m.status,
                        "completion_tokens": s.completion_tokens,
                        "tokens_per_second": round(s.tokens_per_second, 2),
                        "version": m.version_index, "versions": m.version_count,
                    }, ensure_ascii=False), file=out)
                else:
                    print(file=out)

    if args.regenerate:
        run_turn(companion.regenerate(conversation.id))
        return 0
    if args.text is not None:
        run_turn(companion.send(conversation.id, args.text))
        return 0
    return _interactive(companion, conversation.id, run_turn, services, out)


def _interactive(companion, conversation_id: int, run_turn, services: AppServices,
                 out: TextIO) -> int:
    name = services.settings.persona.name
    print(f"Chatting with {name} in conversation {conversation_id}. "
          "/regen writes a new reply, /new starts a new chat, /quit leaves.", file=sys.stderr)
    while True:
        try:
            line = input("you> ")
        except EOFError:
            return 0
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            return 0
        try:
            if text == "/new":
                conversation_id = services.store.create_conversation(persona_name=name).id
                print(f"[new conversation {conversation_id}]", file=sys.stderr)
                continue
            out.write(f"{name}> ")
            if text == "/regen":
                run_turn(companion.regenerate(conversation_id))
            else:
                run_turn(companion.send(conversation_id, text))
        except GhostDeskError as err:
            print(f"error: {err}", file=sys.stderr)


# --- conversations --------------------------------------------------------------------------

def _cmd_conv_list(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    rows = services.store.list_conversations()
    if getattr(args, "json", False):
        _emit(out, args, [_conversation_json(c) for c in rows], "")
        return 0
    if not rows:
        print("No conversations yet. Start one with: ghostdesk chat", file=out)
    for c in rows:
        print(f"{c.id:>5}  {c.updated_at:%Y-%m-%d %H:%M}  {c.message_count:>4} msgs  {c.title}",
              file=out)
    return 0


def _conversation_json(c) -> dict[str, Any]:
    return {"id": c.id, "title": c.title, "created_at": c.created_at.isoformat(),
            "updated_at": c.updated_at.isoformat(), "message_count": c.message_count}


def _cmd_conv_show(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    conversation = services.store.get_conversation(args.id)
    thread = services.store.thread(args.id)
    if getattr(args, "json", False):
        _emit(out, args, services.store.export_conversation(args.id), "")
        return 0
    print(f"# {conversation.title}", file=out)
    for m in thread:
        who = "you" if m.role == "user" else services.settings.persona.name
        tags = []
        if m.version_count > 1:
            tags.append(f"version {m.version_index}/{m.version_count}")
        if m.status != "complete":
            tags.append(m.status)
        suffix = f"  ({', '.join(tags)})" if tags else ""
        print(f"\n[{m.id}] {who}:{suffix}\n{m.content}", file=out)
    return 0


def _cmd_conv_export(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    data = json.dumps(services.store.export_conversation(args.id), ensure_ascii=False, indent=2,
                      default=str)
    if args.out:
        from pathlib import Path

        try:
            Path(args.out).write_text(data + "\n", encoding="utf-8")
        except OSError as err:
            raise GhostDeskError(f"Could not write {args.out}: {err.strerror or err}.") from err
        print(f"Exported conversation {args.id} to {args.out}", file=sys.stderr)
    else:
        print(data, file=out)
    return 0


def _cmd_conv_rename(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    services.store.rename_conversation(args.id, args.title)
    _emit(out, args, {"id": args.id, "title": args.title}, f"Renamed {args.id}.")
    return 0


def _cmd_conv_delete(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    conversation = services.store.get_conversation(args.id)
    if not args.yes:
        if not sys.stdin.isatty():
            raise GhostDeskError("Deleting needs confirmation.", hint="Add --yes to confirm.")
        answer = input(f"Delete '{conversation.title}' and its {conversation.message_count} "
                       "messages? This cannot be undone. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Kept.", file=out)
            return 1
    services.store.delete_conversation(args.id)
    _emit(out, args, {"deleted": args.id}, f"Deleted conversation {args.id}.")
    return 0


# --- model ----------------------------------------------------------------------------------

def _cmd_model_info(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from dataclasses import asdict

    from ghostdesk.core.llm.bundled import bundled_model_path
    from ghostdesk.core.llm.gguf_info import read_model_info

    path = args.path or services.settings.model.path or str(bundled_model_path())
    info = read_model_info(path)
    data = {k: v for k, v in asdict(info).items()
            if k not in ("layer_bytes", "chat_template")}
    data["has_chat_template"] = bool(info.chat_template)
    if args.probe:
        from ghostdesk.core.llm.probe import probe_model_file

        probe_model_file(path, cache_dir=services.paths.cache)
        data["probe"] = "ok"
    _emit(out, args, data, info.summary() + ("\nllama.cpp loads it: ok" if args.probe else ""))
    return 0


# --- feedback -------------------------------------------------------------------------------

_MARKS = {"up": "👍", "down": "👎", "laugh": "😂"}


def _state_text(state) -> str:
    marks = " ".join(_MARKS[k] for k in _MARKS if k in state.ratings) or "not rated"
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
    _emit(out, args, state.to_json(), _state_text(state))
    return 0


def _warn_weight_problems(services: AppServices) -> None:
    for problem in services.ledger.weights().problems:
        print(f"warning: {problem}", file=sys.stderr)


def _event_line(item) -> str:
    from ghostdesk.core.feedback.weights import KIND_LABELS

    e = item.event
    label = _MARKS.get(e.kind) or KIND_LABELS.get(e.kind, e.kind)
    what = e.phrase and f' "{e.phrase}"' or (e.text and f": {e.text}") or ""
    when = e.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
    return (f"{e.id:>6}  {when}  reply {e.message_id:<6} {label}{what}  [{e.status}]"
            f"  — {item.reply.conversation_title}: {item.reply.excerpt}")


def _cmd_feedback_list(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    ledger = services.ledger
    # Replies left alone since the app last looked get their signal before listing.
    ledger.evaluate_abandonment(abandon_after_s=services.abandon_after_s())
    _warn_weight_problems(services)
    if args.pending:
        items = ledger.pending(limit=args.limit)
    else:
        items = ledger.events(message_id=args.message, limit=args.limit)
    if getattr(args, "json", False):
        _emit(out, args, [i.to_json() for i in items], "")
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
    _emit(out, args, [e.to_json() for e in events], text)
    return 0


def _cmd_feedback_text(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    ledger = services.ledger
    setter = ledger.set_comment if args.field == "comment" else ledger.set_better_reply
    state = setter(args.message_id, args.text)
    _emit(out, args, state.to_json(), _state_text(state))
    return 0


def _cmd_feedback_summary(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.core.feedback.datasets import count_examples, load_snapshot

    summary = services.ledger.summary()
    counts = count_examples(load_snapshot(services.db))
    if getattr(args, "json", False):
        _emit(out, args, {**summary.to_json(), "examples": counts.to_json()}, "")
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
    for problem in summary.weight_problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0


def _cmd_feedback_weights(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    if args.kind is not None and args.value is None:
        raise GhostDeskError("Give a value too, e.g.: ghostdesk feedback weights laugh 0.5")
    if args.kind is not None:
        weights = services.ledger.set_weight(args.kind, args.value)
    else:
        weights = services.ledger.weights()
    for problem in weights.problems:
        print(f"warning: {problem}", file=sys.stderr)
    text = "\n".join(f"{kind:<13} {value:+g}" for kind, value in weights.values.items())
    _emit(out, args, dict(weights.values), text)
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
    _warn_weight_problems(services)
    count = export_dataset(services.db, args.format, args.out, options, meta=args.meta)
    noun = "pair" if args.format == "dpo" else "example"
    _emit(out, args,
          {"format": args.format, "path": args.out, "records": count, "split": args.split},
          f"Wrote {count} {args.format.upper()} {noun}{'s' if count != 1 else ''} "
          f"({args.split} split) to {args.out}")
    return 0

"""`ghostdesk conversations ...`: list, show, export, rename and delete chats."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TextIO

from ghostdesk.cli.output import as_json, confirm, emit, json_text, stdin_is_tty
from ghostdesk.core.errors import GhostDeskError

if TYPE_CHECKING:
    from ghostdesk.services import AppServices


def add_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
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


def _cmd_conv_list(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    rows = services.store.list_conversations()
    if as_json(args):
        emit(args, out, [_conversation_json(c) for c in rows], "")
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
    if as_json(args):
        emit(args, out, services.store.export_conversation(args.id), "")
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
    data = json_text(services.store.export_conversation(args.id), ensure_ascii=False, indent=2,
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
    emit(args, out, {"id": args.id, "title": args.title}, f"Renamed {args.id}.")
    return 0


def _cmd_conv_delete(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    conversation = services.store.get_conversation(args.id)
    if not args.yes:
        if not stdin_is_tty():
            raise GhostDeskError("Deleting needs confirmation.", hint="Add --yes to confirm.")
        if not confirm(f"Delete '{conversation.title}' and its {conversation.message_count} "
                       "messages? This cannot be undone.", out):
            print("Kept.", file=out)
            return 1
    services.store.delete_conversation(args.id)
    emit(args, out, {"deleted": args.id}, f"Deleted conversation {args.id}.")
    return 0

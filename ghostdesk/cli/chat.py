"""`ghostdesk chat`: one-shot or interactive chat in the terminal, through the same Companion
as the window."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TextIO

from ghostdesk.cli.output import as_json, json_text
from ghostdesk.core.errors import GhostDeskError

if TYPE_CHECKING:
    from ghostdesk.services import AppServices


def add_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    chat = verbs.add_parser("chat", parents=[common], help="talk to the companion in the terminal")
    chat.add_argument("text", nargs="?", help="send this one message and print the reply")
    chat.add_argument("--conversation", "-c", type=int, metavar="ID",
                      help="continue this conversation (default: a new one)")
    chat.add_argument("--regenerate", action="store_true",
                      help="write a new version of the last reply of --conversation")
    chat.set_defaults(run=_cmd_chat)


def _cmd_chat(args: argparse.Namespace, services: AppServices, out: TextIO) -> int:
    from ghostdesk.core.companion import ReplySaved, ReplyStarted, TokenReceived, UserMessageSaved

    json_out = as_json(args)
    store = services.store
    if args.conversation is not None:
        conversation = store.get_conversation(args.conversation)
    elif args.regenerate:
        raise GhostDeskError("--regenerate needs --conversation ID.")
    else:
        conversation = store.create_conversation(persona_name=services.settings.persona.name)
    engine = services.load_engine()
    companion = services.make_companion(engine)
    if not json_out:
        print(f"[{engine.info.model_name} · {engine.info.device_summary}]", file=sys.stderr)
        if engine.info.offload_reason:
            print(f"[{engine.info.offload_reason}]", file=sys.stderr)

    def run_turn(events) -> None:
        for event in events:
            if isinstance(event, TokenReceived):
                if json_out:
                    print(json_text({"event": "token", "text": event.text}, ensure_ascii=False),
                          file=out)
                else:
                    out.write(event.text)
                out.flush()
            elif isinstance(event, UserMessageSaved) and json_out:
                print(json_text({"event": "user_message_saved", "id": event.message.id,
                                  "conversation_id": conversation.id}), file=out)
            elif isinstance(event, ReplyStarted) and event.dropped_messages and not json_out:
                print(f"[{event.dropped_messages} earlier messages left out to fit the context]",
                      file=sys.stderr)
            elif isinstance(event, ReplySaved):
                m, s = event.message, event.stats
                if json_out:
                    print(json_text({
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

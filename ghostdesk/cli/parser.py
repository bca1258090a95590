"""The `ghostdesk` argument parser, assembled from the verb modules, and the dispatcher that
turns a GhostDeskError into a clear message and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from ghostdesk.cli import adapters, bench, chat, conversations, feedback, memory, model, training
from ghostdesk.cli.output import TerminalSafeWriter, as_json, json_text, terminal_safe
from ghostdesk.core.errors import GhostDeskError

if TYPE_CHECKING:
    from ghostdesk.services import AppServices

_VERB_MODULES = (chat, conversations, model, feedback, memory, training, adapters, bench)


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

    for module in _VERB_MODULES:
        module.add_verbs(verbs, common)
    return parser


def dispatch(args: argparse.Namespace, services: AppServices, out: TextIO | None = None) -> int:
    """Run the verb; returns the exit code. Start-up notices (a repaired setting, a database
    set aside, an adapter not applied) go to stderr first, once per command."""
    out = out or sys.stdout
    json_out = as_json(args)
    for notice in services.notices:
        print(f"notice: {terminal_safe(notice)}", file=sys.stderr)
    run: Callable[[argparse.Namespace, AppServices, TextIO], int] = args.run
    try:
        return run(args, services, out if json_out else TerminalSafeWriter(out))
    except GhostDeskError as err:
        if json_out:
            print(json_text({"error": err.message, "hint": err.hint}), file=out)
        print(f"error: {terminal_safe(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`ghostdesk memory list | head -2`): not an error. Point
        # stdout at nothing so the interpreter's final flush does not complain either.
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass

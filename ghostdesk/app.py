"""The entry point: `ghostdesk` with no verb opens the window; with a verb (chat,
conversations, model, feedback, memory, train, adapters, bench) it runs the headless CLI.

This is the one module that imports both the CLI and the UI; both build their objects with
ghostdesk.services.build_services().
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from ghostdesk import cli
    from ghostdesk.core.errors import GhostDeskError
    from ghostdesk.core.llm.llama_library import preload_llama_for_cuda
    from ghostdesk.services import build_services

    argv = list(sys.argv[1:] if argv is None else argv)

    preload_llama_for_cuda()
    if argv[:1] == ["--smoke-test"]:
        # Installed-copy check: window up, model ready, one reply (installers use it).
        from ghostdesk.ui.smoke import main as smoke_main

        return smoke_main(argv[1:])
    args = cli.build_parser().parse_args(argv)
    try:
        services = build_services(model_path=getattr(args, "model", None))
    except GhostDeskError as err:
        print(f"GhostDesk could not start: {err}", file=sys.stderr)
        return 2
    try:
        if args.verb is None:
            from ghostdesk.ui.application import run_gui

            return run_gui(services, first_run=True)
        return cli.dispatch(args, services)
    finally:
        services.close()

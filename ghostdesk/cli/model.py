"""`ghostdesk model info`: what a GGUF file is, read without loading it (and --probe)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from ghostdesk.cli.output import emit

if TYPE_CHECKING:
    from ghostdesk.services import AppServices


def add_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    model = verbs.add_parser("model", parents=[common], help="inspect GGUF model files")
    model_verbs = model.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = model_verbs.add_parser("info", parents=[common])
    info.add_argument("path", nargs="?", help="GGUF file (default: the configured model)")
    info.add_argument("--probe", action="store_true",
                      help="also test-load it with llama.cpp in a child process")
    info.set_defaults(run=_cmd_model_info)


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
    emit(args, out, data, info.summary() + ("\nllama.cpp loads it: ok" if args.probe else ""))
    return 0

"""`ghostdesk --smoke-test`: start the real window (offscreen when there is no display), load
the configured model, send one message, and print one JSON line with the timings:

    {"ok": true, "window_visible_s": 0.9, "model_ready_s": 3.1, "first_token_s": 3.4, ...}

Times count from the creation of this process, so they include the interpreter, Qt and the
model loading: what a person waits for after a double-click. Exit status: 0 when a reply was
saved, 3 when the model failed to load, 4 on timeout, 5 when the reply failed.

By default it runs on a fresh temporary data folder (removed afterwards), so it never adds a
chat to the user's history; `--data-dir` points it at a folder of your choice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ghostdesk.services import AppServices

EXIT_OK, EXIT_MODEL_FAILED, EXIT_TIMEOUT, EXIT_REPLY_FAILED = 0, 3, 4, 5
DEFAULT_PROMPT = "Hi! Say hello in one short sentence."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ghostdesk --smoke-test",
        description="Start the window, load the model, send one message; print JSON timings.")
    parser.add_argument("--model", metavar="PATH", help="GGUF file instead of the configured one")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="the message to send")
    parser.add_argument("--max-tokens", type=int, default=24, help="longest reply in tokens")
    parser.add_argument("--no-reply", action="store_true", help="stop once the model is ready")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before giving up")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="data folder to use (default: a temporary one, removed afterwards)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    launched = _process_start_time()
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) \
            and sys.platform.startswith("linux"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from ghostdesk.core.errors import GhostDeskError
    from ghostdesk.core.paths import DataPaths
    from ghostdesk.services import build_services

    with tempfile.TemporaryDirectory(prefix="ghostdesk-smoke-") as scratch:
        root = Path(args.data_dir).expanduser() if args.data_dir else Path(scratch)
        try:
            services = build_services(DataPaths(root), model_path=args.model)
        except GhostDeskError as err:
            print(json.dumps({"ok": False, "stage": "start", "error": str(err)}), flush=True)
            return EXIT_MODEL_FAILED
        try:
            result = run_smoke(services, prompt=None if args.no_reply else args.prompt,
                               max_tokens=args.max_tokens, timeout_s=args.timeout,
                               launched_at=launched)
        finally:
            services.close()
    code = result.pop("exit_code")
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return code


def run_smoke(
    services: AppServices,
    *,
    prompt: str | None = DEFAULT_PROMPT,
    max_tokens: int = 24,
    timeout_s: float = 300.0,
    launched_at: float | None = None,
    engine_loader: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Drive one window through start-up (and one reply); return what happened and when."""
    from PySide6.QtCore import QEventLoop, QThreadPool, QTimer
    from PySide6.QtWidgets import QApplication

    from ghostdesk.ui.application import create_application
    from ghostdesk.ui.main_window import MainWindow

    start = time.time() if launched_at is None else launched_at
    deadline = time.monotonic() + timeout_s

    def since() -> float:
        return round(time.time() - start, 3)

    app = create_application([sys.argv[0] if sys.argv else "ghostdesk"])
    services.settings.sampling.max_tokens = max_tokens  # this run only; never saved
    window = MainWindow(services, engine_loader=engine_loader)
    result: dict[str, Any] = {"ok": False, "platform": QApplication.platformName()}
    try:
        window.show()
        while not (window.isVisible() and window.windowHandle()
                   and window.windowHandle().isExposed()):
            if time.monotonic() > deadline:
                return _finish(result, "window", EXIT_TIMEOUT, "the window never showed")
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)
        app.processEvents()
        result["window_visible_s"] = since()

        outcome: dict[str, Any] = {}
        loop = QEventLoop()

        def on_ready() -> None:
            outcome["ready"] = True
            loop.quit()

        def on_failed(message: str) -> None:
            outcome["failed"] = message
            loop.quit()

        window.model_ready.connect(on_ready)
        window.model_failed.connect(on_failed)
        guard = QTimer(singleShot=True)
        guard.timeout.connect(loop.quit)
        guard.start(max(1, int((deadline - time.monotonic()) * 1000)))
        QTimer.singleShot(0, window.load_model)
        loop.exec()
        if "failed" in outcome:
            return _finish(result, "model", EXIT_MODEL_FAILED, outcome["failed"])
        if "ready" not in outcome:
            return _finish(result, "model", EXIT_TIMEOUT, "the model did not load in time")
        result["model_ready_s"] = since()
        info = getattr(window.engine, "info", None)
        result["model"] = getattr(info, "model_name", "")
        result["device"] = getattr(info, "device_summary", "")
        if getattr(info, "offload_reason", ""):
            result["device_note"] = info.offload_reason

        if prompt:
            finished: dict[str, Any] = {}
            window.turn_finished.connect(lambda cid: (finished.setdefault("id", cid),
                                                      loop.quit()))
            guard.start(max(1, int((deadline - time.monotonic()) * 1000)))
            sent_at = time.time()
            window.send_message(prompt)
            loop.exec()
            if "id" not in finished:
                return _finish(result, "reply", EXIT_TIMEOUT, "no reply in time")
            reply = services.store.thread(finished["id"])[-1]
            if reply.role != "assistant" or reply.status not in ("complete", "stopped"):
                return _finish(result, "reply", EXIT_REPLY_FAILED,
                               f"the reply ended as {reply.role}/{reply.status}")
            if reply.first_token_seconds is not None:
                result["first_token_s"] = round(sent_at - start + reply.first_token_seconds, 3)
            result["reply_saved_s"] = since()
            result["reply_tokens"] = reply.completion_tokens
            result["reply_text"] = reply.content[:200]
        guard.stop()
        result["ok"] = True
        result["exit_code"] = EXIT_OK
        return result
    finally:
        window.close()
        QThreadPool.globalInstance().waitForDone(10_000)
        window.shutdown()


def _finish(result: dict[str, Any], stage: str, code: int, error: str) -> dict[str, Any]:
    result.update(ok=False, stage=stage, error=error, exit_code=code)
    return result


def _process_start_time() -> float:
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:  # timing is best effort; the check itself still runs
        return time.time()


if __name__ == "__main__":
    sys.exit(main())

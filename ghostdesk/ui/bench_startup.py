"""The window side of `ghostdesk bench gui`, run as a fresh child process by
ghostdesk.bench.gui: launch → visible window → model ready → one streamed reply, with the
longest GUI-thread stall; prints one JSON line."""

from __future__ import annotations

import json
import sys
import time

from ghostdesk.bench.gui import PROMPT


def measure_launch(tokens: int, model: str) -> None:
    import psutil

    launched = psutil.Process().create_time()

    def since_launch() -> float:
        return time.time() - launched

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from ghostdesk.services import build_services
    from ghostdesk.ui.application import create_application
    from ghostdesk.ui.heartbeat import GuiStallMonitor
    from ghostdesk.ui.main_window import MainWindow

    services = build_services(model_path=model or None)
    services.settings.sampling.max_tokens = tokens
    services.settings.sampling.seed = 7
    app = create_application([])
    window = MainWindow(services)
    window.show()
    while not window.isVisible() or not window.windowHandle().isExposed():
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)
    app.processEvents()
    visible_s = since_launch()

    loop = QEventLoop()
    seen: set[str] = set()

    def arrived(what: str) -> None:
        seen.add(what)
        loop.quit()

    window.model_ready.connect(lambda: arrived("ready"))
    window.memory_warmed.connect(lambda: arrived("warm"))
    window.model_failed.connect(lambda msg: (print(msg, file=sys.stderr), sys.exit(3)))
    QTimer.singleShot(0, window.load_model)
    warm_monitor = GuiStallMonitor(interval_ms=5)
    warm_monitor.start()
    while "ready" not in seen:
        loop.exec()
    ready_s = since_launch()
    # The memory model loads after the chat model, while a person would be typing.
    while "warm" not in seen:
        loop.exec()
    warm_s = since_launch() - ready_s
    warm_stall = warm_monitor.stop()

    monitor = GuiStallMonitor(interval_ms=5)
    monitor.start()
    started = time.perf_counter()
    window.turn_finished.connect(lambda _cid: loop.quit())
    window.send_message(PROMPT)
    loop.exec()
    seconds = time.perf_counter() - started
    stall = monitor.stop()
    reply = services.store.thread(window.current_conversation_id)[-1]
    print(json.dumps({
        "platform": QApplication.platformName(), "visible_s": visible_s, "model_ready_s": ready_s,
        "max_stall_ms": stall, "tokens": reply.completion_tokens,
        "memory_warm_s": warm_s, "memory_warm_stall_ms": warm_stall,
        "tokens_per_second": (reply.completion_tokens or 0) / seconds,
    }))
    window.shutdown()
    services.close()


if __name__ == "__main__":
    measure_launch(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "")

"""The window side of `ghostdesk bench feedback`, run as a child process by
ghostdesk.bench.feedback: opens a window on a prepared data folder and times rating clicks on
the last reply of a ten-turn chat (click → repaint, click → committed); prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def time_rating_clicks(services: Any, clicks: int) -> dict[str, Any]:
    from PySide6.QtCore import QEvent, QObject, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from ghostdesk.ui.application import create_application
    from ghostdesk.ui.main_window import MainWindow

    app = create_application([])
    store = services.store
    cid = store.create_conversation("Benchmark chat", persona_name="Ghost").id
    for n in range(10):
        store.add_message(cid, "user", f"Message number {n}: how are you today?")
        store.add_message(cid, "assistant", f"Reply number {n}: I'm well, thank you for asking.")

    class PaintSpy(QObject):
        """When the button was first painted in its new state (pressed-look paints during
        the press don't count)."""

        def __init__(self) -> None:
            super().__init__()
            self.painted_at: float | None = None
            self.expect_checked = False

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
            if (
                event.type() == QEvent.Type.Paint
                and self.painted_at is None
                and not watched.isDown()  # type: ignore[attr-defined]
                and watched.isChecked() == self.expect_checked  # type: ignore[attr-defined]
            ):
                self.painted_at = time.perf_counter()
            return False

    window = MainWindow(services, engine_loader=lambda: None)
    saved_at: list[float] = []
    window.feedback.saved.connect(lambda _mid: saved_at.append(time.perf_counter()))
    window.resize(1000, 700)
    window.show()
    assert window.current_conversation_id == cid  # the newest chat opens first
    _spin(app, lambda: False, 0.3)
    reply = window.chat_view.last_reply()
    # Opening a long chat can leave the view scrolled past its last bubble; show it as a
    # user would before clicking it.
    window.chat_view.ensureWidgetVisible(reply)
    _spin(app, lambda: False, 0.3)
    bar = reply.feedback
    spies = {}
    for kind, button in bar.buttons.items():
        spies[kind] = PaintSpy()
        button.installEventFilter(spies[kind])

    repaint, handler, saved = [], [], []
    order = ("up", "laugh", "down", "laugh")
    try:
        for i in range(clicks):
            kind = order[i % len(order)]
            button, spy = bar.buttons[kind], spies[kind]
            spy.painted_at = None
            spy.expect_checked = not button.isChecked()
            before = len(saved_at)
            t0 = time.perf_counter()
            QTest.mouseClick(button, Qt.MouseButton.LeftButton)
            handler.append((time.perf_counter() - t0) * 1000)
            _spin(app, lambda s=spy: s.painted_at is not None, 2.0)
            _spin(app, lambda b=before: len(saved_at) > b, 5.0)
            if spy.painted_at is None or len(saved_at) <= before:
                raise RuntimeError(f"rating click {i} was not repainted or saved in time")
            repaint.append((spy.painted_at - t0) * 1000)
            saved.append((saved_at[before] - t0) * 1000)
            _spin(app, lambda: False, 0.02)
    finally:
        window.close()
        window.shutdown()
        window.deleteLater()
        QApplication.processEvents()
    return {
        "platform": app.platformName(),
        "clicks": clicks,
        "repaint_ms": repaint,
        "handler_ms": handler,
        "saved_ms": saved,
    }


def _spin(app: Any, done: Callable[[], bool], timeout_s: float) -> None:
    from PySide6.QtCore import QEventLoop

    deadline = time.perf_counter() + timeout_s
    while not done() and time.perf_counter() < deadline:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        if not done():
            time.sleep(0.0005)


def main(argv: list[str]) -> int:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ghostdesk.core.paths import DataPaths
    from ghostdesk.services import build_services

    services = build_services(DataPaths(Path(argv[0])))
    try:
        print(json.dumps(time_rating_clicks(services, int(argv[1]))))
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

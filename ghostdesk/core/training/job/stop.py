"""How the training child hears it should stop: the run's STOP file or SIGTERM / SIGINT, both
read between steps (the parent's side is launcher.ChildRun.request_stop)."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Any


class StopSignal:
    """Set by SIGTERM/SIGINT or by the run's STOP file; read between steps."""

    def __init__(self, stop_file: Path | None = None) -> None:
        self.stop_file = stop_file
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def install_handlers(self) -> None:
        def handler(_signum: int, _frame: Any) -> None:
            self._event.set()

        for name in ("SIGTERM", "SIGINT", "SIGBREAK"):
            sig = getattr(signal, name, None)
            if sig is not None:
                # Off the main thread (tests) this fails; the STOP file still works.
                with contextlib.suppress(ValueError, OSError):
                    signal.signal(sig, handler)

    @property
    def requested(self) -> bool:
        if not self._event.is_set() and self.stop_file is not None and self.stop_file.exists():
            self._event.set()
        return self._event.is_set()

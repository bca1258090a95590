"""Measure how long the GUI thread stops answering, with a fast QTimer heartbeat.

A timer set to fire every few milliseconds can only fire when the event loop is free, so the
longest gap between two ticks is the longest time the window was frozen (repaints, Markdown
layout, anything that ran on the GUI thread).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer


class GuiStallMonitor(QObject):
    """Ticks every `interval_ms` on the GUI thread and records the longest gap between ticks."""

    def __init__(self, interval_ms: int = 5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timeout)
        self._last: float | None = None
        self.ticks = 0
        self.max_gap_ms = 0.0
        """Longest time between two consecutive ticks, in milliseconds."""

    @property
    def max_stall_ms(self) -> float:
        """The longest gap beyond the interval the timer asked for."""
        return max(0.0, self.max_gap_ms - self.interval_ms)

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def start(self) -> None:
        self.reset()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> float:
        """Stop ticking; returns the longest gap seen, in milliseconds."""
        self._timer.stop()
        self._last = None
        return self.max_gap_ms

    def reset(self) -> None:
        self.ticks = 0
        self.max_gap_ms = 0.0
        if self._timer.isActive():
            self._last = time.perf_counter()

    def _on_timeout(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.max_gap_ms = max(self.max_gap_ms, (now - self._last) * 1000.0)
        self._last = now
        self.ticks += 1

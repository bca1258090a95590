"""Widgets on their own: the composer's keys, the stall monitor, the theme."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer

from ghostdesk.ui.composer import Composer
from ghostdesk.ui.heartbeat import GuiStallMonitor
from ghostdesk.ui.theme import DARK, LIGHT, apply_theme, stylesheet


def test_enter_sends_shift_enter_breaks_the_line(qtbot):
    composer = Composer()
    qtbot.addWidget(composer)
    composer.show()
    sent: list[str] = []
    composer.send_requested.connect(sent.append)
    qtbot.keyClicks(composer.edit, "hello")
    qtbot.keyClick(composer.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer.edit, "world")
    assert sent == []
    assert composer.text() == "hello\nworld"
    qtbot.keyClick(composer.edit, Qt.Key.Key_Enter)
    assert sent == ["hello\nworld"]


def test_send_turns_into_stop(qtbot):
    composer = Composer()
    qtbot.addWidget(composer)
    stops: list[bool] = []
    composer.stop_requested.connect(lambda: stops.append(True))
    assert not composer.send_button.isEnabled()  # nothing typed yet
    composer.set_streaming(True)
    assert composer.send_button.text() == "Stop"
    assert composer.send_button.isEnabled()
    qtbot.keyClicks(composer.edit, "typed meanwhile")
    qtbot.keyClick(composer.edit, Qt.Key.Key_Return)  # Enter does not send during a reply
    composer.send_button.click()
    assert stops == [True]
    composer.set_streaming(False)
    assert composer.send_button.text() == "Send"
    composer.set_send_allowed(False, "The model is still loading")
    assert not composer.send_button.isEnabled()
    assert composer.send_button.toolTip() == "The model is still loading"


def test_stall_monitor_sees_a_blocked_gui_thread(qtbot):
    monitor = GuiStallMonitor(interval_ms=5)
    monitor.start()
    # A loaded machine may run fewer ticks than 30 ms would allow: wait for them, not a time.
    qtbot.waitUntil(lambda: monitor.ticks > 3, timeout=5000)
    QTimer.singleShot(0, lambda: time.sleep(0.08))
    qtbot.wait(60)
    longest = monitor.stop()
    assert monitor.ticks > 3
    assert longest >= 75
    assert monitor.max_stall_ms >= 70
    assert not monitor.running


def test_theme_applies_without_warnings(qapp):
    assert stylesheet(LIGHT) != stylesheet(DARK)
    theme = apply_theme(qapp)
    assert theme in (LIGHT, DARK)
    assert qapp.styleSheet()

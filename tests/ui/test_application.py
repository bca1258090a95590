"""run_gui: the window comes up first, the model loads behind it, closing ends the app."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from ghostdesk.ui.application import icon_path, run_gui
from ghostdesk.ui.main_window import MainWindow
from ghostdesk.ui.status import ModelState


def test_run_gui_shows_the_window_before_loading_and_exits_on_close(qapp, services, engine):
    seen: list[ModelState] = []

    def loader():
        return engine

    services.load_engine = loader  # the real loader would load the bundled GGUF

    def drive() -> None:
        windows = [
            w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()
        ]
        if windows:
            window = windows[0]
            if not seen or seen[-1] != window.model_state:
                seen.append(window.model_state)
            if window.is_model_ready:
                window.close()
                return
        QTimer.singleShot(5, drive)

    QTimer.singleShot(0, drive)
    guard = QTimer(singleShot=True, interval=5000)
    guard.timeout.connect(qapp.quit)
    guard.start()
    assert run_gui(services) == 0
    guard.stop()
    assert seen[0] == ModelState.LOADING
    assert seen[-1] == ModelState.READY
    assert qapp.applicationName() == "GhostDesk"


def test_the_icon_is_found_and_renders():
    path = icon_path()
    assert path is not None and path.suffix == ".svg"
    icon = QIcon(str(path))
    assert not icon.isNull()
    assert not icon.pixmap(64, 64).isNull()

"""Start the desktop app: the window first, then the model, loaded in the background."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QThreadPool, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from ghostdesk.ui.main_window import MainWindow
from ghostdesk.ui.theme import apply_theme

if TYPE_CHECKING:
    from ghostdesk.services import AppServices

APP_NAME = "GhostDesk"
_SHUTDOWN_WAIT_MS = 10_000


def icon_path() -> Path | None:
    """The app icon: in the source tree's resources/, or where an install put it."""
    here = Path(__file__).resolve()
    installed = Path(sys.prefix) / "share" / "ghostdesk" / "resources"
    for folder in (here.parents[2] / "resources", installed):
        candidate = folder / "ghostdesk.svg"
        if candidate.is_file():
            return candidate
    return None


def create_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv if argv is None else argv)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName("ghostdesk")
    icon = icon_path()
    if icon is not None:
        app.setWindowIcon(QIcon(str(icon)))
    apply_theme(app)
    return app


def run_gui(services: AppServices, first_run: bool = False) -> int:
    """Show the window at once, load the model on a worker, and run until the window closes.
    With `first_run`, a new data folder gets the welcome wizard before the window, so the
    window loads the model chosen there."""
    app = create_application()
    if first_run:
        from ghostdesk.ui.first_run import maybe_run_first_run

        maybe_run_first_run(services)
    window = MainWindow(services)
    window.show()
    # Queued so the window paints before anything heavy (even the worker start) happens.
    QTimer.singleShot(0, window.load_model)
    code = app.exec()
    # A reply being saved or a model still loading finishes before the database closes.
    QThreadPool.globalInstance().waitForDone(_SHUTDOWN_WAIT_MS)
    window.shutdown()
    return code

"""Fixtures for the window tests: real services on a temp data folder, a scripted model."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import QCoreApplication, QThreadPool

from ghostdesk.services import AppServices, build_services
from ghostdesk.ui.main_window import MainWindow
from ghostdesk.ui.theme import apply_theme
from tests.fakes import ScriptedEngine

_UI_DIR = __file__.rsplit("/", 1)[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Qt warnings (bad stylesheet, layout misuse, painter errors) fail a UI test. The offscreen
    # platform reports one harmless unsupported feature on every first show.
    for item in items:
        if str(item.path).startswith(_UI_DIR):
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(
                pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")
            )


class StepGate:
    """Stands in for ScriptedEngine.gate: each `step()` lets exactly one piece through, so a
    test can look at a reply half-way. `set()` opens it for good."""

    def __init__(self) -> None:
        self._steps = threading.Semaphore(0)
        self._open = threading.Event()

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self._steps.release()

    def set(self) -> None:
        self._open.set()
        self._steps.release()

    def wait(self, timeout: float | None = None) -> bool:
        if self._open.is_set():
            return True
        return self._steps.acquire(timeout=timeout)


@pytest.fixture
def themed_app(qapp):
    apply_theme(qapp)
    return qapp


@pytest.fixture
def services(ghostdesk_home) -> Iterator[AppServices]:
    s = build_services()
    yield s
    s.close()


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def make_window(qtbot, themed_app, services, engine) -> Iterator[Callable[..., MainWindow]]:
    """Build (and show) a MainWindow; the model loader defaults to the scripted engine."""
    windows: list[MainWindow] = []

    def make(
        loader: Callable[[], object] | None = None, services: AppServices = services
    ) -> MainWindow:
        window = MainWindow(services, engine_loader=loader or (lambda: engine))
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    # Let every background turn and load end, and their last signals arrive, before the
    # database closes.
    if engine.gate is not None:
        engine.gate.set()
    assert QThreadPool.globalInstance().waitForDone(5000)
    QCoreApplication.processEvents()
    for window in windows:
        window.close()
        window.shutdown()


@pytest.fixture
def window(make_window, qtbot) -> MainWindow:
    """A window whose model is loaded and ready."""
    w = make_window()
    with qtbot.waitSignal(w.model_ready, timeout=3000):
        w.load_model()
    return w

"""SerialWorker: one ordered thread whose results come back on the GUI thread."""

from __future__ import annotations

import threading

from ghostdesk.ui.workers import SerialWorker


def test_work_runs_in_order_and_results_arrive_on_the_gui_thread(qtbot) -> None:
    worker = SerialWorker("test-serial")
    got: list[tuple[object, object, str]] = []

    def on_done(result, error) -> None:
        got.append((result, error, threading.current_thread().name))

    def fail() -> None:
        raise ValueError("disk full")

    for n in range(5):
        worker.submit(lambda n=n: n, on_done)
    worker.submit(fail, on_done)
    qtbot.waitUntil(lambda: len(got) == 6, timeout=3000)
    assert [r for r, _, _ in got[:5]] == [0, 1, 2, 3, 4]
    assert isinstance(got[5][1], ValueError) and got[5][0] is None
    assert {name for _, _, name in got} == {threading.main_thread().name}
    worker.shutdown()


def test_after_shutdown_nothing_runs_or_arrives(qtbot) -> None:
    worker = SerialWorker("test-serial")
    ran: list[int] = []
    worker.shutdown()
    worker.submit(lambda: ran.append(1), lambda *_: ran.append(2))
    qtbot.wait(50)
    assert ran == []

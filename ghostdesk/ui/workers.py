"""Run slow core work (model loading, streamed turns, file reads) off the GUI thread.

The two call helpers wrap superqt workers so that every outcome arrives as a plain value on the GUI
thread: a failure is delivered as a `WorkFailed` item instead of through superqt's `errored`
signal, which re-raises on the GUI thread by default and drops `finished` for RuntimeErrors.
`SerialWorker` is one ordered thread for the feedback and memory controllers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from superqt.utils import FunctionWorker, GeneratorWorker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkFailed:
    """The background work raised `error`; nothing after it was produced."""

    error: Exception


class StopFlag:
    """Asked from the GUI thread, read between tokens by the worker's `should_stop` callable."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def request(self) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


def _guarded_items(make: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    try:
        yield from make()
    except Exception as err:  # delivered to the GUI thread as data, logged there with context
        yield WorkFailed(err)


def _guarded_call(func: Callable[[], Any]) -> Any:
    try:
        return func()
    except Exception as err:
        return WorkFailed(err)


def stream_in_background(
    make: Callable[[], Iterator[Any]],
    on_item: Callable[[Any], None],
    on_finished: Callable[[], None],
) -> GeneratorWorker:
    """Iterate `make()` on a pool thread. Each item (or a final WorkFailed) reaches `on_item`
    on the GUI thread through a queued signal, in order, and `on_finished` comes last."""
    from superqt.utils import create_worker  # ~0.3 s: loaded after the window is shown

    worker = create_worker(_guarded_items, make, _start_thread=False, _ignore_errors=True)
    worker.yielded.connect(on_item)
    worker.finished.connect(on_finished)
    worker.start()
    return worker


def call_in_background(func: Callable[[], Any], on_done: Callable[[Any], None]) -> FunctionWorker:
    """Call `func()` on a pool thread; `on_done` gets its result, or a WorkFailed, on the
    GUI thread."""
    from superqt.utils import create_worker

    worker = create_worker(_guarded_call, func, _start_thread=False, _ignore_errors=True)
    worker.returned.connect(on_done)
    worker.start()
    return worker


class SerialWorker(QObject):
    """One background thread that runs work in the order it was asked for, never two at once
    (database writes in click order, memory calls); each result comes back on the GUI thread
    as `on_done(result, error)`. After shutdown() results are dropped."""

    _finished = Signal(object)  # from the worker thread: (on_done, result, error)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._name = name
        self.closed = False
        self._finished.connect(self._on_finished)

    def submit(self, work: Callable[[], Any],
               on_done: Callable[[Any, BaseException | None], None]) -> None:
        if self.closed:
            return
        finished, name = self._finished, self._name

        def run() -> None:
            try:
                outcome = (on_done, work(), None)
            except Exception as err:  # shown on the GUI thread, with context
                outcome = (on_done, None, err)
            try:
                finished.emit(outcome)
            except RuntimeError:  # the window is gone: nobody is left to tell
                log.debug("%s result arrived after its window closed", name)

        self._executor.submit(run)

    def _on_finished(self, outcome: tuple[Callable[..., None], Any, BaseException | None]) -> None:
        if self.closed:
            return
        on_done, result, error = outcome
        on_done(result, error)

    def shutdown(self) -> None:
        """Finish the work already asked for, then stop."""
        self.closed = True
        self._executor.shutdown(wait=True)

"""Which adapter the chat uses: activate, deactivate, roll back or delete one, swapped into the
loaded model off the GUI thread and recorded in the adapter registry.

With no model loaded only the record changes (the next load applies it); while a model loads,
the change waits for it. Owned by the TrainingSession, which forwards its signals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.ui.workers import WorkFailed, call_in_background

log = logging.getLogger("ghostdesk.ui.training")


class AdapterSwitcher(QObject):
    """The host provides `model_ready` / `model_failed` signals, `is_model_loading` and
    `adapter_slot()` (the loaded model's AdapterSlot, None when no model is loaded)."""

    busy_changed = Signal(bool)
    """A change is being applied (True) or all are done (False)."""
    action_failed = Signal(object)
    """A change was refused or failed (an exception; a GhostDeskError says what to do)."""
    records_changed = Signal()
    """The registry may have changed: read it again."""

    def __init__(self, host: Any, registry: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.registry = registry
        self._busy = 0
        self._deferred: tuple[str, str | None] | None = None
        host.model_ready.connect(self._on_host_model_settled)
        host.model_failed.connect(self._on_host_model_settled)

    @property
    def busy(self) -> bool:
        return self._busy > 0

    def activate(self, adapter_id: str) -> None:
        self._change_active("activate", adapter_id)

    def deactivate(self) -> None:
        self._change_active("deactivate", None)

    def rollback(self) -> None:
        self._change_active("rollback", None)

    def delete(self, adapter_id: str) -> None:
        registry = self.registry
        self._work(lambda: registry.delete(adapter_id))

    def _change_active(self, kind: str, adapter_id: str | None) -> None:
        """Swap in the loaded model (off the GUI thread, in the engine's lane) and record
        it; with no model loaded only the record changes, and the next load applies it.
        While the model loads, the change waits for it."""
        from ghostdesk.core.training import registry as reg

        if self.host.is_model_loading:
            self._deferred = (kind, adapter_id)
            return
        registry = self.registry
        slot = self.host.adapter_slot()
        if slot is None:
            try:
                if kind == "activate":
                    registry.set_active(adapter_id)
                elif kind == "deactivate":
                    registry.set_active(None)
                else:
                    registry.rollback()
            except GhostDeskError as err:
                self.action_failed.emit(err)
            self.records_changed.emit()
            return
        if kind == "activate":
            assert adapter_id is not None
            self._work(lambda: reg.activate_adapter(registry, slot, adapter_id))
        elif kind == "deactivate":
            self._work(lambda: reg.deactivate_adapter(registry, slot))
        else:
            self._work(lambda: reg.rollback_adapter(registry, slot))

    def _work(self, work: Callable[[], Any]) -> None:
        self._busy += 1
        if self._busy == 1:
            self.busy_changed.emit(True)
        call_in_background(work, self._on_work_done)

    def _on_work_done(self, result: Any) -> None:
        self._busy -= 1
        if self._busy == 0:
            self.busy_changed.emit(False)
        if isinstance(result, WorkFailed):
            if not isinstance(result.error, GhostDeskError):
                log.error("changing the adapter failed", exc_info=result.error)
            self.action_failed.emit(result.error)
        self.records_changed.emit()

    def _on_host_model_settled(self, *_args: Any) -> None:
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            self._change_active(*deferred)

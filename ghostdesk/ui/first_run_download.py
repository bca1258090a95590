"""The welcome wizard's download page: the chosen catalogue model downloaded with progress,
speed, time left, pause/resume and retry (the download runs on a worker thread)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QVBoxLayout

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.models.catalogue import CatalogueModel, format_size
from ghostdesk.core.models.download_events import (
    DownloadFinished,
    DownloadPaused,
    DownloadProgress,
    DownloadRetrying,
    DownloadStarted,
    DownloadVerifying,
)
from ghostdesk.ui.first_run_page import WizardPage, wizard_label
from ghostdesk.ui.workers import WorkFailed, stream_in_background

if TYPE_CHECKING:
    from ghostdesk.core.models.download import ModelDownload

log = logging.getLogger(__name__)


class DownloadPage(WizardPage):
    """Downloads the chosen catalogue model with progress, speed, ETA and pause/resume."""

    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Downloading the model")
        self.download: ModelDownload | None = None
        self.model: CatalogueModel | None = None
        self.finished_path: Path | None = None
        self.running = False
        self.progress = QProgressBar(minimum=0, maximum=1000, textVisible=True)
        self.status_label = wizard_label()
        self.error_label = wizard_label(name="InlineError")
        self.error_label.setVisible(False)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self._on_pause_button_clicked)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.pause_button)
        layout = QVBoxLayout(self)
        layout.addWidget(wizard_label("The file goes into GhostDesk's data folder. You can "
                                      "pause, go back, or close this window: the download "
                                      "continues where it stopped next time.", "FieldHint"))
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addWidget(self.error_label)
        layout.addLayout(row)
        layout.addStretch(1)

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        model = self._owner().model_page.selected_model()
        if model is None:
            return
        if self.model != model:
            self.model = model
            self.finished_path = None
            self.download = self._owner().make_download(model)
        self.setSubTitle(f"{model.name} · {model.quant} · about {format_size(model.size_bytes)}")
        if self.finished_path is None:
            self.start()

    def cleanupPage(self) -> None:  # noqa: N802 (Back was pressed)
        self.stop()

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        return self.finished_path is not None

    def start(self) -> None:
        if self.running or self.download is None:
            return
        self.running = True
        self.error_label.setVisible(False)
        self.pause_button.setText("Pause")
        self.pause_button.setEnabled(True)
        self.status_label.setText("Contacting the server…")
        download = self.download
        stream_in_background(download.run, self._on_event, self._on_done)

    def stop(self) -> None:
        """Pause (the part is kept); safe to call at any time."""
        if self.running and self.download is not None:
            self.download.pause()

    def _on_pause_button_clicked(self) -> None:
        if self.running:
            self.pause_button.setEnabled(False)
            self.stop()
        else:
            self.start()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, DownloadStarted):
            if event.resumed_from:
                self.status_label.setText(
                    f"Continuing from {format_size(event.resumed_from)} of "
                    f"{format_size(event.total_bytes)}…")
        elif isinstance(event, DownloadProgress):
            self.progress.setValue(int(event.fraction * 1000))
            text = f"{format_size(event.done_bytes)} of {format_size(event.total_bytes)}"
            if event.bytes_per_second > 0:
                text += f" · {format_size(event.bytes_per_second)}/s"
            if event.eta_seconds is not None:
                text += f" · about {duration_text(event.eta_seconds)} left"
            self.status_label.setText(text)
        elif isinstance(event, DownloadVerifying):
            if event.checked_bytes < event.total_bytes:
                self.status_label.setText(
                    f"Checking what was downloaded before: {format_size(event.checked_bytes)}…")
            else:
                self.status_label.setText("Checking the file…")
        elif isinstance(event, DownloadRetrying):
            self.status_label.setText(f"The connection was lost ({event.reason}); "
                                      f"trying again (attempt {event.attempt})…")
        elif isinstance(event, DownloadPaused):
            self.status_label.setText(
                f"Paused at {format_size(event.done_bytes)} of {format_size(event.total_bytes)}.")
        elif isinstance(event, DownloadFinished):
            self.finished_path = event.path
            self.progress.setValue(1000)
            self.status_label.setText(
                "Already downloaded." if event.already_present else
                "Downloaded and verified." if event.verified else "Downloaded.")
            self.completeChanged.emit()
        elif isinstance(event, WorkFailed):
            err = event.error
            if not isinstance(err, GhostDeskError):
                log.error("model download failed", exc_info=err)
            self.error_label.setText(str(err))
            self.error_label.setVisible(True)

    def _on_done(self) -> None:
        self.running = False
        done = self.finished_path is not None
        self.pause_button.setEnabled(not done)
        self.pause_button.setVisible(not done)
        self.pause_button.setText("Try again" if self.error_label.isVisible() else "Resume")
        owner = self._owner()
        if owner is not None:
            owner.download_stopped.emit()


def duration_text(seconds: float) -> str:
    """A time left in words a person reads at a glance: "40 s", "12 min", "1.5 h"."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"

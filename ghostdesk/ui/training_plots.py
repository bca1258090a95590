"""Live plots of a training run: the loss and the reward margin per step, in the app's colours.

pyqtgraph is imported here, when the Training tab is built, never at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QWidget

from ghostdesk.ui.theme import Theme, current_theme

if TYPE_CHECKING:
    from ghostdesk.core.training.events import Step

_MARGIN_LIGHT = "#c2410c"
_MARGIN_DARK = "#f59e0b"


class TrainingPlots(QWidget):
    """Two small plots side by side. Test hooks: `loss_curve`, `margin_curve` (their
    `getData()`), `margin_plot` (hidden for SFT, which has no reward margin)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        self._pg = pg
        theme = current_theme()
        self.loss_plot = self._plot(theme, "Loss", "lower is closer to your feedback")
        self.margin_plot = self._plot(theme, "Reward margin", "liked − disliked")
        self.margin_plot.setToolTip(
            "How much more the adapter favours the replies you liked than those you "
            "disliked, in this step's examples (higher is better; 0 = no preference)."
        )
        zero = pg.mkPen(theme.muted, width=1, style=Qt.PenStyle.DashLine)
        self.margin_plot.getPlotItem().addItem(pg.InfiniteLine(pos=0, angle=0, pen=zero))
        accent = pg.mkPen(theme.accent, width=2)
        margin = pg.mkPen(_MARGIN_DARK if theme.dark else _MARGIN_LIGHT, width=2)
        self.loss_curve = self.loss_plot.plot([], [], pen=accent)
        self.margin_curve = self.margin_plot.plot([], [], pen=margin)
        self._steps: list[int] = []
        self._loss: list[float] = []
        self._margin_steps: list[int] = []
        self._margin: list[float] = []

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(self.loss_plot, 1)
        layout.addWidget(self.margin_plot, 1)
        self.setMinimumHeight(170)

    def _plot(self, theme: Theme, title: str, subtitle: str) -> Any:
        pg = self._pg
        widget = pg.PlotWidget(background=theme.surface)
        widget.setObjectName(f"{title.replace(' ', '')}Plot")
        item = widget.getPlotItem()
        item.setTitle(
            f"<span style='color:{theme.text}; font-weight:600'>{title}</span>"
            f"<span style='color:{theme.muted}; font-size:9pt'>&nbsp;&nbsp;{subtitle}</span>"
        )
        # Room on the right for the last tick label of the step axis.
        item.layout.setContentsMargins(2, 2, 14, 2)
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.showGrid(x=False, y=True, alpha=0.25)
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(theme.border))
            axis.setTextPen(pg.mkPen(theme.muted))
        item.getAxis("bottom").setLabel("step", color=theme.muted)
        item.setXRange(0, 1, padding=0)
        widget.setMinimumWidth(200)
        widget.setFrameShape(widget.Shape.NoFrame)
        return widget

    def clear(self) -> None:
        self._steps, self._loss, self._margin_steps, self._margin = [], [], [], []
        self._redraw()

    def set_steps(self, steps: list[Step], max_steps: int = 0) -> None:
        """Show a whole run so far (a view opened in the middle of one)."""
        self._steps, self._loss, self._margin_steps, self._margin = [], [], [], []
        for step in steps:
            self._append(step)
        self._redraw(max_steps)

    def add_step(self, step: Step) -> None:
        self._append(step)
        self._redraw(step.max_steps)

    def show_margin(self, visible: bool) -> None:
        self.margin_plot.setVisible(visible)

    def _append(self, step: Step) -> None:
        if step.loss is not None:
            self._steps.append(step.step)
            self._loss.append(float(step.loss))
        if step.reward_margin is not None:
            self._margin_steps.append(step.step)
            self._margin.append(float(step.reward_margin))

    def _redraw(self, max_steps: int = 0) -> None:
        self.loss_curve.setData(self._steps, self._loss)
        self.margin_curve.setData(self._margin_steps, self._margin)
        # The x axis runs a quarter ahead of the last step (never past the run's end), so a
        # long run's first steps are not squeezed into its left edge.
        last = self._steps[-1] if self._steps else 0
        right = max(last, min(max_steps or max(last, 10), max(10, round(last * 1.25))), 1)
        for plot in (self.loss_plot, self.margin_plot):
            item = plot.getPlotItem()
            item.setXRange(0, right, padding=0.02)
            # Steps are whole numbers: no "1.5" ticks on a short run.
            axis = item.getAxis("bottom")
            if right <= 10:
                axis.setTickSpacing(1, 1)
            else:
                axis.setTickSpacing()

"""View ▸ Feedback: totals, the signals waiting for a yes or no, recently rated replies, and
how many training examples of each kind the feedback gives.

Everything is read on a pool thread (counting training examples reads the whole ledger), and
confirming or dismissing goes through the window's FeedbackController like a click in a chat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ghostdesk.core.feedback.overview import FeedbackOverview, load_overview
from ghostdesk.core.feedback.records import CONFIRMED, DISMISSED
from ghostdesk.core.feedback.weights import rating_marks
from ghostdesk.ui.feedback_bar import SIGNAL_LOOK
from ghostdesk.ui.workers import WorkFailed, call_in_background

if TYPE_CHECKING:
    from ghostdesk.core.feedback.ledger import RewardLedger
    from ghostdesk.ui.feedback_controller import FeedbackController

_ID = Qt.ItemDataRole.UserRole


class FeedbackView(QDialog):
    """Non-modal. Test hooks: `loaded` (emitted after each refresh), the tree widgets."""

    loaded = Signal()
    reply_activated = Signal(int, int)
    """(message id, conversation id): the user wants to see this reply in its chat."""

    def __init__(
        self,
        ledger: RewardLedger,
        controller: FeedbackController,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.ledger, self.controller = ledger, controller
        self.overview: FeedbackOverview | None = None
        self._loading = False
        self._again = False
        self.setWindowTitle("Feedback")
        self.resize(820, 560)

        self.totals_label = QLabel("Reading your feedback…", objectName="FeedbackTotals")
        self.totals_label.setWordWrap(True)
        self.problems_label = QLabel(objectName="InlineError", wordWrap=True)
        self.problems_label.setVisible(False)

        self.pending_tree = _tree(["Signal", "Your words", "Reply", "Chat"], [210, 140, 0, 160])
        self.pending_tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.pending_tree.itemSelectionChanged.connect(self._update_buttons)
        self.pending_tree.itemDoubleClicked.connect(self._on_item_double_clicked)
        self.confirm_button = QPushButton("Confirm")
        self.confirm_button.setToolTip("The selected signals are right")
        self.confirm_button.clicked.connect(lambda: self._decide(CONFIRMED))
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.setToolTip("The selected signals are wrong: never train on them")
        self.dismiss_button.clicked.connect(lambda: self._decide(DISMISSED))
        pending_page = QWidget()
        pending_box = QVBoxLayout(pending_page)
        pending_box.addWidget(
            QLabel(
                "Signals read from what you wrote. They count unless you dismiss them; "
                "dismissed signals are never trained on.",
                objectName="FieldHint",
                wordWrap=True,
            )
        )
        pending_box.addWidget(self.pending_tree, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.confirm_button)
        row.addWidget(self.dismiss_button)
        pending_box.addLayout(row)

        self.recent_tree = _tree(
            ["When", "Feedback", "Reward", "Reply", "Chat"], [130, 150, 70, 0, 160]
        )
        self.recent_tree.itemDoubleClicked.connect(self._on_item_double_clicked)

        self.examples_grid = QGridLayout()
        self.examples_grid.setColumnStretch(0, 1)
        self.examples_grid.setColumnMinimumWidth(1, 110)
        self.examples_grid.setColumnMinimumWidth(2, 110)
        training_page = QWidget()
        training_box = QVBoxLayout(training_page)
        training_box.addLayout(self.examples_grid)
        training_box.addWidget(
            QLabel(
                "Held out: about one conversation in ten is kept out of training, always "
                "the same ones, to measure whether a new adapter is better.\n"
                "Export from a terminal: ghostdesk feedback export --format kto|dpo|sft "
                "--out FILE.jsonl",
                objectName="FieldHint",
                wordWrap=True,
            )
        )
        training_box.addStretch(1)

        self.tabs = QTabWidget()
        self.tabs.addTab(pending_page, "To confirm")
        self.tabs.addTab(self.recent_tree, "Recently rated")
        self.tabs.addTab(training_page, "Training examples")

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        self.refresh_button = buttons.addButton("Refresh", QDialogButtonBox.ButtonRole.ActionRole)
        self.refresh_button.clicked.connect(self.refresh)

        layout = QVBoxLayout(self)
        layout.addWidget(self.totals_label)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(buttons)

        # Many answers in a row (or a burst of clicks in the chat) refresh once.
        self._refresh_timer = QTimer(self, singleShot=True, interval=250)
        self._refresh_timer.timeout.connect(self.refresh)
        controller.signals_changed.connect(self._refresh_timer.start)
        controller.saved.connect(lambda _mid: self._refresh_timer.start())
        self._update_buttons()
        self.refresh()

    # -- loading ---------------------------------------------------------------------------

    def refresh(self) -> None:
        if self._loading:
            self._again = True
            return
        self._loading = True
        ledger = self.ledger
        call_in_background(lambda: load_overview(ledger), self._on_overview_loaded)

    def _on_overview_loaded(self, result: Any) -> None:
        self._loading = False
        if self._again:
            self._again = False
            self.refresh()
            return
        if isinstance(result, WorkFailed):
            self.totals_label.setText(f"Your feedback could not be read: {result.error}")
            self.loaded.emit()
            return
        self.overview = result
        self._show(result)
        self.loaded.emit()

    def _show(self, overview: FeedbackOverview) -> None:
        s = overview.summary
        e = s.explicit
        self.totals_label.setText(
            f"👍 {e.get('up', 0)}   👎 {e.get('down', 0)}   😂 {e.get('laugh', 0)}   ·   "
            f"{_n(e.get('comment', 0), 'comment')}   ·   "
            f"{_n(e.get('better_reply', 0), 'better reply', 'better replies')}\n"
            f"{_n(s.rated_replies, 'reply', 'replies')} with feedback   ·   total reward "
            f"{s.total_reward:+.2f}   ·   {_n(s.pending, 'signal')} to confirm"
        )
        self.problems_label.setText("\n".join(s.weight_problems))
        self.problems_label.setVisible(bool(s.weight_problems))

        self.pending_tree.clear()
        for item in overview.pending:
            icon, meaning = SIGNAL_LOOK.get(item.event.kind, ("•", item.event.kind))
            row = QTreeWidgetItem(
                [
                    f"{icon} {meaning} ({item.event.weight:+g})",
                    item.event.phrase or "",
                    item.reply.excerpt,
                    item.reply.conversation_title,
                ]
            )
            row.setData(0, _ID, (item.event.id, item.reply.message_id, item.reply.conversation_id))
            self.pending_tree.addTopLevelItem(row)
        self.tabs.setTabText(0, f"To confirm ({len(overview.pending)})")

        self.recent_tree.clear()
        for rated in overview.recent:
            state = rated.state
            marks = rating_marks(state.ratings)
            extras = [
                w
                for w, on in (("comment", state.comment), ("better reply", state.better_reply))
                if on
            ]
            row = QTreeWidgetItem(
                [
                    rated.last_rated_at.astimezone().strftime("%Y-%m-%d %H:%M"),
                    " · ".join(p for p in [marks, *extras] if p),
                    f"{state.reward:+.2f}",
                    rated.reply.excerpt,
                    rated.reply.conversation_title,
                ]
            )
            row.setData(0, _ID, (None, rated.reply.message_id, rated.reply.conversation_id))
            self.recent_tree.addTopLevelItem(row)

        _clear_grid(self.examples_grid)
        c = overview.counts
        headers = ("", "for training", "held out")
        for col, text in enumerate(headers):
            header = QLabel(f"<b>{text}</b>")
            header.setAlignment(Qt.AlignmentFlag.AlignRight)
            self.examples_grid.addWidget(header, 0, col)
        rows = (
            ("kto_desirable", "KTO, desirable (label true)"),
            ("kto_undesirable", "KTO, undesirable (label false)"),
            ("dpo_pairs", "DPO pairs (versions rated differently)"),
            ("sft_examples", "SFT examples (your better replies)"),
        )
        for r, (name, label) in enumerate(rows, start=1):
            self.examples_grid.addWidget(QLabel(label), r, 0)
            n = getattr(c, name)
            for col, side in ((1, "train"), (2, "eval")):
                cell = QLabel(str(n[side]), objectName=f"examples_{name}_{side}")
                cell.setAlignment(Qt.AlignmentFlag.AlignRight)
                self.examples_grid.addWidget(cell, r, col)
        self._update_buttons()

    # -- actions ---------------------------------------------------------------------------

    def _update_buttons(self) -> None:
        selected = bool(self.pending_tree.selectedItems())
        self.confirm_button.setEnabled(selected)
        self.dismiss_button.setEnabled(selected)

    def _decide(self, status: str) -> None:
        for row in self.pending_tree.selectedItems():
            event_id, message_id, _cid = row.data(0, _ID)
            self.controller.decide(message_id, event_id, status)
            row.setHidden(True)  # answered; the refresh after the write confirms it
        self.pending_tree.clearSelection()

    def _on_item_double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        _event_id, message_id, conversation_id = item.data(0, _ID)
        self.reply_activated.emit(message_id, conversation_id)


def _tree(headers: list[str], widths: list[int]) -> QTreeWidget:
    """A flat list; the column of width 0 takes the room that is left."""
    tree = QTreeWidget()
    tree.setHeaderLabels(headers)
    tree.setRootIsDecorated(False)
    tree.setUniformRowHeights(True)
    tree.setAlternatingRowColors(True)
    header = tree.header()
    header.setStretchLastSection(False)
    for column, width in enumerate(widths):
        if width:
            tree.setColumnWidth(column, width)
        else:
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
    return tree


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def _clear_grid(grid: QGridLayout) -> None:
    while grid.count():
        item = grid.takeAt(0)
        widget = item.widget() if item is not None else None
        if widget is not None:
            widget.setParent(None)  # gone from findChild() now, not at the next event loop pass
            widget.deleteLater()

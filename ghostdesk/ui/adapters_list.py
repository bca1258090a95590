"""The trained adapters: which one the chat uses, how each measured, and the buttons to use
one, go back to the base model, roll back, or delete one (after asking).

A view only: it emits what the person asked for; the training session does it (off the GUI
thread, through the chat model's adapter slot) and then sets the list again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from ghostdesk.core.training.registry import AdapterRecord

_ID = Qt.ItemDataRole.UserRole
ACTIVE_MARK = "● in use"


class AdapterList(QWidget):
    """Test hooks: `tree`, `use_button`, `base_button`, `rollback_button`, `delete_button`,
    `select(adapter_id)`."""

    activate_requested = Signal(str)
    deactivate_requested = Signal()
    rollback_requested = Signal()
    delete_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._records: dict[str, AdapterRecord] = {}
        self._active: str | None = None
        self._rollback_to: AdapterRecord | None = None
        self._busy = False

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(
            ["Trained", "", "Method", "Held-out accuracy", "Examples", "Adapter"]
        )
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # ids differ at their end
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        for column, width in ((0, 118), (1, 66), (2, 60), (3, 122), (4, 68)):
            self.tree.setColumnWidth(column, width)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemDoubleClicked.connect(self._on_tree_item_double_clicked)

        self.empty_label = QLabel(
            "No adapters yet. A finished training run adds one here.",
            objectName="FieldHint",
            wordWrap=True,
        )
        self.use_button = QPushButton("Use")
        self.use_button.setToolTip("Swap the selected adapter into the chat")
        self.use_button.clicked.connect(self._on_use_button_clicked)
        self.base_button = QPushButton("Use none")
        self.base_button.setToolTip("Chat with the base model, without any adapter")
        self.base_button.clicked.connect(self.deactivate_requested)
        self.rollback_button = QPushButton("Roll back")
        self.rollback_button.clicked.connect(self.rollback_requested)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.clicked.connect(self._on_delete_button_clicked)

        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.base_button)
        buttons.addWidget(self.rollback_button)
        buttons.addStretch(1)
        buttons.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty_label)
        layout.addLayout(buttons)
        self._update_buttons()

    # -- contents ----------------------------------------------------------------------------

    def set_adapters(
        self, records: list[AdapterRecord], active_id: str | None, rollback_to: AdapterRecord | None
    ) -> None:
        selected = self.selected_id()
        self._records = {r.id: r for r in records}
        self._active, self._rollback_to = active_id, rollback_to
        self.tree.clear()
        bold = QFont()
        bold.setBold(True)
        for record in records:
            mark = ACTIVE_MARK if record.id == active_id else ""
            row = QTreeWidgetItem(
                [
                    _when(record.created),
                    mark,
                    record.method.upper(),
                    _accuracy(record),
                    _examples(record),
                    record.id,
                ]
            )
            row.setData(0, _ID, record.id)
            for column in range(row.columnCount()):
                row.setToolTip(column, _details(record))
            if record.id == active_id:
                row.setFont(1, bold)
            self.tree.addTopLevelItem(row)
        self.empty_label.setVisible(not records)
        self.select(selected or active_id)
        self._update_buttons()

    def set_busy(self, busy: bool) -> None:
        """While a swap is in progress nothing else can be asked."""
        self._busy = busy
        self._update_buttons()

    def selected_id(self) -> str | None:
        items = self.tree.selectedItems()
        return items[0].data(0, _ID) if items else None

    def select(self, adapter_id: str | None) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, _ID) == adapter_id:
                self.tree.setCurrentItem(item)
                return
        self.tree.clearSelection()

    def ids(self) -> list[str]:
        return [
            self.tree.topLevelItem(i).data(0, _ID) for i in range(self.tree.topLevelItemCount())
        ]

    def marked_active(self) -> list[str]:
        """Ids of the rows shown as in use (one at most)."""
        return [
            self.tree.topLevelItem(i).data(0, _ID)
            for i in range(self.tree.topLevelItemCount())
            if self.tree.topLevelItem(i).text(1) == ACTIVE_MARK
        ]

    # -- buttons -----------------------------------------------------------------------------

    def _update_buttons(self) -> None:
        selected = self.selected_id()
        free = not self._busy
        self.use_button.setEnabled(free and selected is not None and selected != self._active)
        self.base_button.setEnabled(free and self._active is not None)
        self.rollback_button.setEnabled(free and self._active is not None)
        target = self._rollback_to.id if self._rollback_to is not None else "the base model"
        self.rollback_button.setToolTip(
            f"Go back to what the chat used before: {target}"
            if self._active
            else "Nothing to roll back: the chat uses the base model"
        )
        self.delete_button.setEnabled(free and selected is not None and selected != self._active)
        self.delete_button.setToolTip(
            "The adapter in use can't be deleted: use another one (or none) first"
            if selected is not None and selected == self._active
            else "Delete the selected adapter from disk"
        )

    def _on_use_button_clicked(self) -> None:
        selected = self.selected_id()
        if selected is not None:
            self.activate_requested.emit(selected)

    def _on_tree_item_double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        adapter_id = item.data(0, _ID)
        if adapter_id != self._active and not self._busy:
            self.activate_requested.emit(adapter_id)

    def _on_delete_button_clicked(self) -> None:
        selected = self.selected_id()
        if selected is None or selected == self._active:
            return
        answer = QMessageBox.question(
            self,
            "Delete adapter",
            f"Delete the adapter {selected}?\nIt is removed from disk; this cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_requested.emit(selected)


def _when(created: str) -> str:
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(created, fmt).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            continue
    return created


def _accuracy(record: AdapterRecord) -> str:
    m = record.metrics
    acc = m.get("accuracy")
    if not isinstance(acc, int | float):
        return "not measured"
    text = f"{acc:.0%}"
    prev = m.get("previous_accuracy")
    if isinstance(prev, int | float):
        text += f" (was {prev:.0%})"
    return text


def _examples(record: AdapterRecord) -> str:
    counts = record.data_counts
    n = counts.get("train_examples")
    if n is None:
        n = sum(v for k, v in counts.items() if k.startswith("train_") and isinstance(v, int))
    return str(n) if n else "–"


def _details(record: AdapterRecord) -> str:
    lines = [record.id, f"Trained for {record.base_name or 'the chat model'}"]
    if record.parent:
        lines.append(f"Measured against {record.parent}, the adapter in use then")
    s = record.settings
    if s:
        knobs = [
            f"{s['preset']} preset" if s.get("preset") else "",
            f"rank {s['lora_r']}" if s.get("lora_r") else "",
            f"{s['steps']} steps" if s.get("steps") else "",
        ]
        lines.append(", ".join(k for k in knobs if k))
    reason = record.metrics.get("reason")
    if reason:
        lines.append(str(reason))
    return "\n".join(line for line in lines if line)

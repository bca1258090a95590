"""Under a companion reply: the memories recalled for it, each with Pin, Edit… and Forget.

"Choosing to remember you": the user sees which crystals went into a reply's prompt and can
pin, edit or forget them on the spot. The widget only shows and asks through its signals;
the MemoryController does the work and answers with `update_crystal` / `remove_crystal`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from ghostdesk.core.memory import CrystalRecord

SCORE_TIP = (
    "How closely this memory matched the moment (cosine similarity, 0 to 1); "
    "0.30 or more is needed to be recalled."
)


@dataclass(frozen=True)
class RecalledRow:
    """One crystal a reply used, and how closely it matched (cosine similarity)."""

    crystal: CrystalRecord
    score: float


def rows_from_recall(recall: Any) -> list[RecalledRow]:
    """From a live RecallResult (the MemoriesRecalled event)."""
    if recall is None:
        return []
    return [RecalledRow(r.crystal, float(r.similarity)) for r in recall.crystals]


def rows_from_stored(stored: Iterable[Any]) -> list[RecalledRow]:
    """From `MemoryService.recalled_for_message` (StoredRecall: crystal, score, rank)."""
    return [RecalledRow(s.crystal, float(s.score)) for s in stored]


class MemoryRow(QFrame):
    """One recalled crystal: its text, its score, and what can be done with it."""

    pin_clicked = Signal(bool)
    edit_clicked = Signal()
    forget_clicked = Signal()

    def __init__(self, row: RecalledRow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("RecalledRow")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.score = row.score
        self.text_label = QLabel(objectName="RecalledText", wordWrap=True)
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.score_label = QLabel(f"{row.score:.2f}", objectName="RecalledScore")
        self.score_label.setToolTip(SCORE_TIP)
        self.pin_button = _button("📌 Pin", "Pin: never let this memory fade")
        self.pin_button.setCheckable(True)
        self.pin_button.clicked.connect(self.pin_clicked)
        self.edit_button = _button("Edit…", "Change what is remembered")
        self.edit_button.clicked.connect(self.edit_clicked)
        self.forget_button = _button("Forget", "Forget this memory for good")
        self.forget_button.clicked.connect(self.forget_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 3, 4, 3)
        layout.setSpacing(4)
        layout.addWidget(self.text_label, 1)
        for w in (self.score_label, self.pin_button, self.edit_button, self.forget_button):
            layout.addWidget(w, 0, Qt.AlignmentFlag.AlignVCenter)
        self.set_crystal(row.crystal)

    def set_crystal(self, crystal: CrystalRecord) -> None:
        """Show `crystal` as saved (also undoes a click whose save failed)."""
        self.crystal = crystal
        self.text_label.setText(crystal.text)
        self.pin_button.setChecked(crystal.pinned)
        self.pin_button.setText("📌 Pinned" if crystal.pinned else "📌 Pin")
        self.pin_button.setToolTip(
            "Pinned: it never fades. Click to unpin." if crystal.pinned
            else "Pin: never let this memory fade"
        )
        where = f"\nFrom {crystal.source}" if crystal.source else ""
        self.text_label.setToolTip(
            f"{_KINDS.get(crystal.kind, crystal.kind)} · importance {crystal.importance:.2f} · "
            f"recalled {crystal.recall_count}×{where}"
        )


_KINDS = {"fact": "Learned from a chat", "manual": "You asked to remember it",
          "document": "From a document"}


class RecalledMemories(QWidget):
    """A "Recalled memories (N)" disclosure, collapsed at first and hidden when empty.
    Test hooks: `toggle_button`, `rows()`, `crystal_ids()`, `is_expanded`."""

    pin_requested = Signal(int, bool)
    """(crystal id, pinned): the row already shows it; `update_crystal` confirms."""
    edit_requested = Signal(int)
    forget_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("RecalledMemories")
        self.toggle_button = QToolButton(objectName="RecalledToggle")
        self.toggle_button.setCheckable(True)
        self.toggle_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.toggle_button.setToolTip("The memories that went into this reply")
        self.toggle_button.toggled.connect(self._on_toggled)
        self.list = QWidget(objectName="RecalledList")
        self._list_layout = QVBoxLayout(self.list)
        self._list_layout.setContentsMargins(0, 2, 0, 2)
        self._list_layout.setSpacing(3)
        self.list.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.toggle_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.list)
        self._rows: list[MemoryRow] = []
        self._enabled = False
        self._update()

    # -- content ---------------------------------------------------------------------------

    def rows(self) -> list[MemoryRow]:
        return list(self._rows)

    def crystal_ids(self) -> list[int]:
        return [r.crystal.id for r in self._rows]

    @property
    def is_expanded(self) -> bool:
        return self.toggle_button.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        self.toggle_button.setChecked(expanded)

    def set_memory_enabled(self, enabled: bool) -> None:
        """Memory is off or unavailable: the disclosure stays hidden whatever it holds."""
        self._enabled = enabled
        self._update()

    def set_rows(self, rows: Sequence[RecalledRow]) -> None:
        if [(r.crystal, r.score) for r in rows] == [(m.crystal, m.score) for m in self._rows]:
            return
        for row in self._rows:
            self._list_layout.removeWidget(row)
            row.setParent(None)
            row.deleteLater()
        self._rows = []
        for item in rows:
            row = MemoryRow(item)
            cid = item.crystal.id
            row.pin_clicked.connect(lambda on, c=cid: self.pin_requested.emit(c, on))
            row.edit_clicked.connect(lambda c=cid: self.edit_requested.emit(c))
            row.forget_clicked.connect(lambda c=cid: self.forget_requested.emit(c))
            self._list_layout.addWidget(row)
            self._rows.append(row)
        self._update()

    def update_crystal(self, crystal: CrystalRecord) -> bool:
        """Show the saved state of a crystal this reply used; False if it used none such."""
        found = False
        for row in self._rows:
            if row.crystal.id == crystal.id:
                row.set_crystal(crystal)
                found = True
        return found

    def remove_crystal(self, crystal_id: int) -> bool:
        """A forgotten crystal disappears from the list (and the list, when empty)."""
        gone = [r for r in self._rows if r.crystal.id == crystal_id]
        for row in gone:
            self._list_layout.removeWidget(row)
            row.setParent(None)
            row.deleteLater()
            self._rows.remove(row)
        if gone:
            self._update()
        return bool(gone)

    def _update(self) -> None:
        n = len(self._rows)
        arrow = "▾" if self.toggle_button.isChecked() else "▸"
        self.toggle_button.setText(f"{arrow} Recalled memories ({n})")
        self.setVisible(self._enabled and n > 0)

    def _on_toggled(self, expanded: bool) -> None:
        self.list.setVisible(expanded)
        self._update()


def _button(text: str, tip: str) -> QToolButton:
    button = QToolButton(objectName="BubbleAction", text=text)
    button.setToolTip(tip)
    button.setAccessibleName(tip.split(":")[0])
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    return button

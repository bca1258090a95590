"""View ▸ Memory: every memory crystal, searchable by meaning and by words, with the user's
controls: edit, pin, forget, archive, restore, add, and import a document.

Reading and searching go through the window's MemoryController, on its memory thread (a
search embeds the query), so typing in the search box never stalls the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ghostdesk.ui.memory_notices import count_of

if TYPE_CHECKING:
    from ghostdesk.core.memory import CrystalRecord
    from ghostdesk.ui.memory_controller import MemoryController

LIST_LIMIT = 500
SEARCH_LIMIT = 100
SEARCH_DELAY_MS = 300
SHOW = (("All memories", None), ("Active", False), ("Archived", True))
COLUMNS = ("Memory", "Importance", "Last recalled", "Recalled", "Pinned", "State")
_ID = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class PaneContent:
    crystals: list[CrystalRecord]
    stats: Any
    query: str = ""
    matches: dict[int, str] = field(default_factory=dict)
    """For a search: crystal id -> how it matched ("words", "meaning 0.82")."""


def load_content(memory: Any, query: str, archived: bool | None) -> PaneContent:
    """What the pane shows, in one call on the memory thread."""
    stats = memory.stats()
    if not query.strip():
        return PaneContent(memory.list_crystals(archived=archived, limit=LIST_LIMIT), stats)
    hits = memory.search(query, archived=None, limit=SEARCH_LIMIT)
    matches = {h.crystal.id: ("words" if h.text_match else f"meaning {h.similarity:.2f}")
               for h in hits}
    return PaneContent([h.crystal for h in hits], stats, query, matches)


class MemoryPane(QDialog):
    """Non-modal. Test hooks: `loaded` (after each refresh), `search_edit`, `show_combo`,
    `tree`, `status_label`, the buttons, `select(crystal_id)`, `import_path(path)`."""

    loaded = Signal()

    def __init__(self, controller: MemoryController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.content: PaneContent | None = None
        self._loading = False
        self._again = False
        self.setWindowTitle("Memory")
        self.resize(900, 560)

        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search memories by meaning or by words…")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setAccessibleName("Search memories")
        self.show_combo = QComboBox()
        for text, _archived in SHOW:
            self.show_combo.addItem(text)
        self.show_combo.setToolTip("Which memories to list (a search looks everywhere)")
        top = QHBoxLayout()
        top.addWidget(self.search_edit, 1)
        top.addWidget(self.show_combo)

        self.tree = QTreeWidget(objectName="MemoryList")
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setWordWrap(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, width in zip(range(1, len(COLUMNS)), (84, 130, 72, 56, 76), strict=True):
            self.tree.setColumnWidth(column, width)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemDoubleClicked.connect(lambda _item, _col: self._on_edit_clicked())

        self.add_button = QPushButton("Add…")
        self.add_button.setToolTip("Write something for the companion to remember")
        self.import_button = QPushButton("Import document…")
        self.import_button.setToolTip("Remember a .txt or .md file, passage by passage")
        self.edit_button = QPushButton("Edit…")
        self.pin_button = QPushButton("Pin")
        self.archive_button = QPushButton("Archive")
        self.archive_button.setToolTip("Keep it, but stop recalling it (restorable)")
        self.restore_button = QPushButton("Restore")
        self.restore_button.setToolTip("Back from the archive into recall")
        self.forget_button = QPushButton("Forget…")
        self.forget_button.setToolTip("Delete it for good")
        self.add_button.clicked.connect(lambda: self.controller.ask_add(self))
        self.import_button.clicked.connect(self._on_import_clicked)
        self.edit_button.clicked.connect(self._on_edit_clicked)
        self.pin_button.clicked.connect(self._on_pin_clicked)
        self.archive_button.clicked.connect(lambda: self._act(self.controller.archive))
        self.restore_button.clicked.connect(lambda: self._act(self.controller.restore))
        self.forget_button.clicked.connect(self._on_forget_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.import_button)
        buttons.addStretch(1)
        for b in (self.edit_button, self.pin_button, self.archive_button, self.restore_button,
                  self.forget_button):
            buttons.addWidget(b)

        self.status_label = QLabel("Reading memories…", objectName="FieldHint", wordWrap=True)
        self.error_label = QLabel(objectName="InlineError", wordWrap=True)
        self.error_label.setVisible(False)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.error_label)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status_label)

        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.refresh)
        self.search_edit.textChanged.connect(self._search_timer.start)
        self.show_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        # A burst of changes (an import, clicks in the chat) refreshes once.
        self._refresh_timer = QTimer(self, singleShot=True, interval=150)
        self._refresh_timer.timeout.connect(self.refresh)
        controller.changed.connect(self._refresh_timer.start)
        controller.failed.connect(self._on_failed)
        self._update_buttons()
        self.refresh()

    # -- loading ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the list (or the search) again; the selection is kept where it can be."""
        self._search_timer.stop()
        if self._loading:
            self._again = True
            return
        self._loading = True
        query = self.search_edit.text()
        archived = SHOW[self.show_combo.currentIndex()][1]
        self.controller.read(lambda memory: load_content(memory, query, archived),
                             self._on_content_loaded)

    def _on_content_loaded(self, content: Any, error: BaseException | None) -> None:
        self._loading = False
        if self._again:
            self._again = False
            self.refresh()
            return
        if error is not None:
            self.status_label.setText(f"Memories could not be read: {error}")
        else:
            self.error_label.setVisible(False)
            self._show(content)
        self.loaded.emit()

    def _show(self, content: PaneContent) -> None:
        selected = self.selected()
        self.content = content
        self.tree.clear()
        muted = QBrush(self.palette().color(QPalette.ColorGroup.Disabled,
                                            QPalette.ColorRole.Text))
        for crystal in content.crystals:
            item = QTreeWidgetItem([
                crystal.text,
                f"{crystal.importance:.2f}",
                _when(crystal.last_recalled_at),
                str(crystal.recall_count),
                "📌" if crystal.pinned else "",
                "archived" if crystal.archived else "active",
            ])
            item.setData(0, _ID, crystal.id)
            item.setToolTip(0, _tooltip(crystal, content.matches.get(crystal.id)))
            for column in (1, 3, 4):
                item.setTextAlignment(column, Qt.AlignmentFlag.AlignCenter)
            if crystal.archived:
                for column in range(len(COLUMNS)):
                    item.setForeground(column, muted)
            self.tree.addTopLevelItem(item)
            if selected is not None and crystal.id == selected.id:
                item.setSelected(True)
        s = content.stats
        parts = [f"{count_of(s.active, 'memory', 'memories')} in use", f"{s.archived} archived",
                 f"memory model {s.embed_model}"]
        if content.query:
            found = len(content.crystals)
            parts.insert(0, f"{count_of(found, 'match', 'matches')} for “{content.query}”")
        elif len(content.crystals) >= LIST_LIMIT:
            parts.insert(0, f"showing the newest {LIST_LIMIT}")
        lines = ["  ·  ".join(parts), *s.notices]
        self.status_label.setText("\n".join(lines))
        self._update_buttons()

    # -- selection and actions -------------------------------------------------------------

    def selected(self) -> CrystalRecord | None:
        items = self.tree.selectedItems()
        if not items or self.content is None:
            return None
        cid = items[0].data(0, _ID)
        return next((c for c in self.content.crystals if c.id == cid), None)

    def select(self, crystal_id: int) -> bool:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, _ID) == crystal_id:
                self.tree.setCurrentItem(item)
                return True
        return False

    def ids(self) -> list[int]:
        return [self.tree.topLevelItem(i).data(0, _ID)
                for i in range(self.tree.topLevelItemCount())]

    def _update_buttons(self) -> None:
        crystal = self.selected()
        for b in (self.edit_button, self.pin_button, self.forget_button):
            b.setEnabled(crystal is not None)
        self.pin_button.setText("Unpin" if crystal is not None and crystal.pinned else "Pin")
        self.archive_button.setEnabled(
            crystal is not None and not crystal.archived and not crystal.pinned)
        self.archive_button.setVisible(crystal is None or not crystal.archived)
        self.restore_button.setEnabled(crystal is not None and crystal.archived)
        self.restore_button.setVisible(crystal is not None and crystal.archived)

    def _act(self, action: Any) -> None:
        crystal = self.selected()
        if crystal is not None:
            action(crystal.id)

    def _on_edit_clicked(self) -> None:
        crystal = self.selected()
        if crystal is not None:
            self.controller.ask_edit(crystal.id, crystal.text, self)

    def _on_pin_clicked(self) -> None:
        crystal = self.selected()
        if crystal is not None:
            self.controller.pin(crystal.id, not crystal.pinned)

    def _on_forget_clicked(self) -> None:
        crystal = self.selected()
        if crystal is not None:
            self.controller.ask_forget(crystal.id, crystal.text, self)

    def _on_import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a document", str(Path.home()), "Text documents (*.txt *.md)")
        if path:
            self.import_path(path)

    def import_path(self, path: str | Path) -> None:
        """Import a .txt or .md file (what the file dialog does after choosing one)."""
        self.status_label.setText(f"Importing {Path(path).name}…")
        self.controller.import_document(path)

    def _on_failed(self, _action: str, error: Any) -> None:
        self.error_label.setText(str(error))
        self.error_label.setVisible(True)


def _when(moment: Any) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment is not None else "never"


def _tooltip(crystal: CrystalRecord, match: str | None) -> str:
    kind = {"fact": "Learned from a chat", "manual": "You asked to remember it",
            "document": "From a document"}.get(crystal.kind, crystal.kind)
    lines = [crystal.text if len(crystal.text) <= 600 else crystal.text[:599] + "…", "", kind]
    if crystal.source:
        lines.append(f"Source: {crystal.source}")
    lines.append(f"Made {_when(crystal.created_at)}")
    if crystal.archived:
        lines.append(f"Archived {_when(crystal.archived_at)}: not recalled until restored")
    if match:
        lines.append(f"Matched by {match}")
    return "\n".join(lines)


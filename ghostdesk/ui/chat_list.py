"""The sidebar: every conversation, newest first, with New chat, rename and delete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from ghostdesk.core.store.records import ConversationRecord

_ID_ROLE = Qt.ItemDataRole.UserRole


class ChatList(QWidget):
    """Lists conversations. Selecting, renaming and deleting are requests: the main window
    performs them on the store, then calls set_conversations again."""

    conversation_selected = Signal(int)
    new_chat_requested = Signal()
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Sidebar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.new_chat_button = QPushButton("+  New chat", objectName="PrimaryButton")
        self.new_chat_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_chat_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.list = QListWidget(objectName="ChatList")
        self.list.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setUniformItemSizes(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 14, 12, 12)
        layout.setSpacing(10)
        layout.addWidget(self.new_chat_button)
        layout.addWidget(QLabel("Chats", objectName="SidebarTitle"))
        layout.addWidget(self.list, 1)

        self._titles: dict[int, str] = {}
        self.new_chat_button.clicked.connect(self.new_chat_requested)
        self.list.currentItemChanged.connect(self._on_list_current_item_changed)
        self.list.itemChanged.connect(self._on_list_item_changed)
        self.list.customContextMenuRequested.connect(self._on_list_custom_context_menu_requested)

    # -- content ----------------------------------------------------------------------------

    def set_conversations(
        self, conversations: Sequence[ConversationRecord], current_id: int | None
    ) -> None:
        """Replace the list without emitting conversation_selected."""
        self.list.blockSignals(True)
        try:
            self.list.clear()
            self._titles = {}
            for conv in conversations:
                item = QListWidgetItem(conv.title or "Untitled")
                item.setData(_ID_ROLE, conv.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                item.setToolTip(_tooltip(conv))
                self.list.addItem(item)
                self._titles[conv.id] = conv.title
                if conv.id == current_id:
                    self.list.setCurrentItem(item)
        finally:
            self.list.blockSignals(False)

    def ids(self) -> list[int]:
        return [self.list.item(i).data(_ID_ROLE) for i in range(self.list.count())]

    def titles(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(_ID_ROLE) if item is not None else None

    def item_for(self, conversation_id: int) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(_ID_ROLE) == conversation_id:
                return item
        return None

    def select(self, conversation_id: int) -> None:
        """Select a conversation as if the user clicked it."""
        item = self.item_for(conversation_id)
        if item is not None:
            self.list.setCurrentItem(item)

    def start_rename(self, conversation_id: int) -> None:
        item = self.item_for(conversation_id)
        if item is not None:
            self.list.editItem(item)

    # -- slots ------------------------------------------------------------------------------

    def _on_list_current_item_changed(self, current: QListWidgetItem | None, _previous) -> None:
        if current is not None:
            self.conversation_selected.emit(current.data(_ID_ROLE))

    def _on_list_item_changed(self, item: QListWidgetItem) -> None:
        cid = item.data(_ID_ROLE)
        title = item.text().strip()
        old = self._titles.get(cid, "")
        if not title:
            self.list.blockSignals(True)
            item.setText(old)
            self.list.blockSignals(False)
            return
        if title != old:
            self._titles[cid] = title
            self.rename_requested.emit(cid, title)

    def _on_list_custom_context_menu_requested(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        cid = item.data(_ID_ROLE)
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.list.editItem(item))
        menu.addAction("Delete…", lambda: self.delete_requested.emit(cid))
        menu.exec(self.list.viewport().mapToGlobal(pos))


def _tooltip(conv: ConversationRecord) -> str:
    when = conv.updated_at.astimezone().strftime("%Y-%m-%d %H:%M") if conv.updated_at else ""
    count = conv.message_count
    return f"{conv.title}\n{count} message{'s' if count != 1 else ''} · {when}"

"""The memories recalled for each reply, kept per message and shown under its bubble.

What a turn recalled is known at once (the companion's MemoriesRecalled event) and shown on
the reply as it streams; replies of a chat opened later read theirs from the database, for
the whole chat in one go on the memory thread. A change to a memory (pin, edit, forget) is
applied to every bubble that shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ghostdesk.ui.recalled_memories import RecalledRow, rows_from_recall, rows_from_stored

if TYPE_CHECKING:
    from ghostdesk.ui.chat_view import ChatView
    from ghostdesk.ui.message_bubble import MessageBubble

log = logging.getLogger("ghostdesk.ui")

Submit = Callable[[Callable[[], Any], Callable[[Any, BaseException | None], None]], None]
MAX_KEPT_REPLIES = 20_000
"""Replies whose recalled rows are kept in memory; past this the cache starts afresh."""


class ReplyRecalls:
    """The recalled rows of every reply seen, and of the reply being written (`live`)."""

    def __init__(self, chat_view: ChatView, submit: Submit, on_loaded: Callable[[], None],
                 ) -> None:
        self.chat_view = chat_view
        self._submit = submit
        self._on_loaded = on_loaded
        self._recalls: dict[int, list[RecalledRow]] = {}
        self.live: list[RecalledRow] = []
        """What the turn in flight recalled; shown on its reply as it streams."""
        self._generation = 0

    # -- the turn in flight ----------------------------------------------------------------

    def recalled(self, recall: Any) -> None:
        """The turn in flight recalled these (a RecallResult)."""
        self.live = rows_from_recall(recall)

    def reply_started(self) -> None:
        if self.chat_view.streaming_bubble is not None:
            show_rows(self.chat_view.streaming_bubble, self.live)

    def reply_saved(self, message_id: int) -> None:
        rows, self.live = self.live, []
        self._recalls[message_id] = rows
        show_rows(self.chat_view.bubble_for(message_id), rows)

    # -- a chat shown ----------------------------------------------------------------------

    def load(self, memory: Any) -> None:
        """Show the replies' recalled memories: what is known at once, then fresh from the
        database, read on the memory thread in one go for the whole chat."""
        ids = [b.message_id for b in self.chat_view.bubbles()
               if b.role == "assistant" and b.message_id is not None]
        for mid in ids:
            if mid in self._recalls:
                show_rows(self.chat_view.bubble_for(mid), self._recalls[mid])
        if self.chat_view.streaming_bubble is not None and self.live:
            show_rows(self.chat_view.streaming_bubble, self.live)
        if not ids:
            return
        if len(self._recalls) > MAX_KEPT_REPLIES:
            self._recalls.clear()
        self._generation += 1
        generation = self._generation

        def read() -> dict[int, list[RecalledRow]]:
            return {mid: rows_from_stored(memory.recalled_for_message(mid)) for mid in ids}

        def shown(result: Any, error: BaseException | None) -> None:
            if error is not None:
                log.warning("reading recalled memories failed: %s", error)
                return
            self._recalls.update(result)
            if generation == self._generation:
                for mid, rows in result.items():
                    show_rows(self.chat_view.bubble_for(mid), rows)
            self._on_loaded()

        self._submit(read, shown)

    # -- a memory changed ------------------------------------------------------------------

    def show_crystal(self, record: Any) -> None:
        """A memory changed (pinned, edited...): every row of it shows the new record."""
        for mid, rows in self._recalls.items():
            if any(r.crystal.id == record.id for r in rows):
                self._recalls[mid] = [RecalledRow(record, r.score) if r.crystal.id == record.id
                                      else r for r in rows]
        for bubble in self.chat_view.bubbles():
            if bubble.recalled is not None:
                bubble.recalled.update_crystal(record)

    def drop_crystal(self, crystal_id: int) -> None:
        """A memory was forgotten: its rows go from every reply."""
        for mid, rows in self._recalls.items():
            self._recalls[mid] = [r for r in rows if r.crystal.id != crystal_id]
        self.live = [r for r in self.live if r.crystal.id != crystal_id]
        for bubble in self.chat_view.bubbles():
            if bubble.recalled is not None:
                bubble.recalled.remove_crystal(crystal_id)

    def undo_click(self, crystal_id: int) -> None:
        """A change failed: the rows show the memory as it is saved again."""
        for bubble in self.chat_view.bubbles():
            for row in bubble.recalled.rows() if bubble.recalled is not None else []:
                if row.crystal.id == crystal_id:
                    row.set_crystal(row.crystal)

    def crystal_text(self, crystal_id: int) -> str:
        """The text of a memory shown under some reply ("" if none shows it)."""
        for rows in (self.live, *self._recalls.values()):
            for r in rows:
                if r.crystal.id == crystal_id:
                    return r.crystal.text
        return ""


def show_rows(bubble: MessageBubble | None, rows: list[RecalledRow]) -> None:
    if bubble is not None and bubble.recalled is not None:
        bubble.recalled.set_rows(rows)

"""Conversations and their message trees: each operation the chat needs, one short transaction.

A conversation's messages form a tree. The user sees one path of it, the *thread*, from a root
down to `current_leaf_id`. Regenerating a reply or editing a message adds a sibling (a new
*version*) instead of overwriting anything; `select_version` switches the thread to another
branch. Everything returned is a frozen record, never a live ORM object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    delete,
    exists,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.orm import Session, aliased

from ghostdesk.core.errors import GhostDeskError, NotFoundError
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import Conversation, Message, utcnow
from ghostdesk.core.store.records import MESSAGE_FIELDS, ConversationRecord, MessageRecord

DEFAULT_TITLE = "New chat"
TITLE_LIMIT = 48
ROLES = frozenset({"user", "assistant", "system"})
EXPORT_FORMAT = "ghostdesk.conversation"
EXPORT_VERSION = 1


class _CurrentLeaf(Enum):
    CURRENT_LEAF = "the conversation's current leaf"


# Default for `add_message(parent_id=...)`: continue the thread the user sees.
CURRENT_LEAF = _CurrentLeaf.CURRENT_LEAF

# From a message down to the end of its newest branch: at each step take the newest child.
_NEWEST_LEAF_SQL = text(
    """
    WITH RECURSIVE down(id, depth) AS (
        SELECT :start, 0
        UNION ALL
        SELECT (SELECT max(c.id) FROM messages AS c WHERE c.parent_id = down.id), down.depth + 1
        FROM down
        WHERE EXISTS (SELECT 1 FROM messages AS c WHERE c.parent_id = down.id)
    )
    SELECT id FROM down ORDER BY depth DESC LIMIT 1
    """
)


def title_from_text(content: str, limit: int = TITLE_LIMIT) -> str:
    """A short chat title from a message: its first non-blank line, at most `limit` characters,
    cut on a word boundary with "…". Empty if the message has no text."""
    line = next((" ".join(ln.split()) for ln in content.splitlines() if ln.strip()), "")
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]  # leave room for the ellipsis
    if line[limit - 1] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]  # don't end on half a word
    return (cut.rstrip(" ,.;:-") or line[: limit - 1]) + "…"


class ConversationStore:
    """Creates, reads and changes conversations in one `Database`. Safe to share across threads."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    # -- conversations -------------------------------------------------------------------

    def create_conversation(
        self, title: str = DEFAULT_TITLE, persona_name: str = ""
    ) -> ConversationRecord:
        now = self._clock()
        with self._db.session() as s:
            conv = Conversation(
                title=_clean_title(title),
                persona_name=persona_name,
                created_at=now,
                updated_at=now,
            )
            s.add(conv)
            s.flush()
            return ConversationRecord.from_orm(conv, 0)

    def list_conversations(self) -> list[ConversationRecord]:
        """All conversations, the most recently active first."""
        counts = (
            select(Message.conversation_id, func.count().label("n"))
            .group_by(Message.conversation_id)
            .subquery()
        )
        query = (
            select(Conversation, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.conversation_id == Conversation.id)
            .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        )
        with self._db.read_session() as s:
            return [ConversationRecord.from_orm(c, n) for c, n in s.execute(query)]

    def get_conversation(self, cid: int) -> ConversationRecord:
        with self._db.read_session() as s:
            return _conversation_record(s, _load_conversation(s, cid))

    def rename_conversation(self, cid: int, title: str) -> ConversationRecord:
        """Renames a chat; like opening it, this is not activity, so its place in the list stays."""
        clean = _clean_title(title)
        with self._db.session() as s:
            conv = _load_conversation(s, cid)
            conv.title = clean
            return _conversation_record(s, conv)

    def delete_conversation(self, cid: int) -> None:
        """Deletes the conversation and, by foreign-key cascade, all of its messages."""
        with self._db.session() as s:
            deleted = s.execute(delete(Conversation).where(Conversation.id == cid)).rowcount
            if not deleted:
                raise _no_conversation(cid)

    # -- messages ------------------------------------------------------------------------

    def add_message(
        self,
        cid: int,
        role: str,
        content: str,
        *,
        parent_id: int | None | _CurrentLeaf = CURRENT_LEAF,
        **fields: Any,
    ) -> MessageRecord:
        """Stores a message and makes it the end of the thread the user sees.

        By default it continues the current thread; pass `parent_id` to add a new version
        instead (e.g. a regenerated reply: the parent is the user message it answers; an
        edited first message: `parent_id=None`). `fields` are other Message columns
        (status, model_name, generation stats...). Returns after the commit, so the message
        is on disk.
        """
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {sorted(ROLES)}")
        unknown = set(fields) - MESSAGE_FIELDS
        if unknown:
            raise TypeError(f"add_message() got unknown message fields {sorted(unknown)}")
        now = self._clock()
        with self._db.session() as s:
            conv = _load_conversation(s, cid)
            parent = conv.current_leaf_id if parent_id is CURRENT_LEAF else parent_id
            if parent is not None:
                parent_row = s.get(Message, parent)
                if parent_row is None or parent_row.conversation_id != cid:
                    raise NotFoundError(f"Message {parent} does not exist in conversation {cid}.")
            names_chat = (
                role == "user"
                and conv.title == DEFAULT_TITLE
                and not s.scalar(
                    select(exists().where(Message.conversation_id == cid, Message.role == "user"))
                )
            )
            msg = Message(
                conversation_id=cid,
                parent_id=parent,
                role=role,
                content=content,
                created_at=now,
                **fields,
            )
            s.add(msg)
            s.flush()  # assigns msg.id
            conv.current_leaf_id = msg.id
            conv.updated_at = now
            if names_chat:
                conv.title = title_from_text(content) or DEFAULT_TITLE
            return _message_record(s, msg)

    def get_message(self, mid: int) -> MessageRecord:
        with self._db.read_session() as s:
            return _message_record(s, _load_message(s, mid))

    def versions(self, mid: int) -> list[MessageRecord]:
        """The versions of a message (itself included), oldest first."""
        with self._db.read_session() as s:
            msg = _load_message(s, mid)
            rows = s.scalars(select(Message).where(*_same_slot(Message, msg)).order_by(Message.id))
            siblings = list(rows)
            return [MessageRecord.from_orm(m, i, len(siblings)) for i, m in enumerate(siblings, 1)]

    def select_version(self, mid: int) -> ConversationRecord:
        """Shows the branch through message `mid`: the thread now ends at its newest leaf."""
        with self._db.session() as s:
            msg = _load_message(s, mid)
            leaf = s.execute(_NEWEST_LEAF_SQL, {"start": mid}).scalar_one()
            conv = _load_conversation(s, msg.conversation_id)
            conv.current_leaf_id = leaf
            return _conversation_record(s, conv)

    def thread(self, cid: int) -> list[MessageRecord]:
        """The messages the user sees, from the root to the current leaf."""
        with self._db.read_session() as s:
            conv = _load_conversation(s, cid)
            if conv.current_leaf_id is None:
                return []
            return _thread(s, cid, conv.current_leaf_id)

    def message_count(self) -> int:
        """Messages stored in all conversations."""
        with self._db.read_session() as s:
            return s.scalar(select(func.count()).select_from(Message)) or 0

    # -- export --------------------------------------------------------------------------

    def export_conversation(self, cid: int) -> dict[str, Any]:
        """Everything about one conversation as JSON-serializable data: the conversation, the
        thread the user sees, and every message (all versions, with parent ids)."""
        with self._db.read_session() as s:
            conv = _conversation_record(s, _load_conversation(s, cid))
            query = select(Message).where(Message.conversation_id == cid).order_by(Message.id)
            rows = list(s.scalars(query))
            slots: dict[tuple[int | None, str], list[int]] = defaultdict(list)
            for m in rows:
                slots[(m.parent_id, m.role)].append(m.id)
            records = {}
            for m in rows:
                ids = slots[(m.parent_id, m.role)]
                records[m.id] = MessageRecord.from_orm(m, ids.index(m.id) + 1, len(ids))
        # The thread from the loaded rows: no second query, and consistent with "messages".
        thread: list[MessageRecord] = []
        node = conv.current_leaf_id
        while node is not None:
            thread.append(records[node])
            node = records[node].parent_id
        thread.reverse()
        return {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_VERSION,
            "exported_at": self._clock().isoformat(),
            "conversation": conv.to_json(),
            "thread": [m.to_json() for m in thread],
            "messages": [r.to_json() for r in records.values()],
        }


# -- queries -----------------------------------------------------------------------------


def _no_conversation(cid: int) -> NotFoundError:
    return NotFoundError(f"Conversation {cid} does not exist.")


def _load_conversation(s: Session, cid: int) -> Conversation:
    conv = s.get(Conversation, cid)
    if conv is None:
        raise _no_conversation(cid)
    return conv


def _load_message(s: Session, mid: int) -> Message:
    msg = s.get(Message, mid)
    if msg is None:
        raise NotFoundError(f"Message {mid} does not exist.")
    return msg


def _clean_title(title: str) -> str:
    clean = " ".join(title.split())
    if not clean:
        raise GhostDeskError("A chat title can't be empty.")
    return clean[:200]  # the column's length


def _conversation_record(s: Session, conv: Conversation) -> ConversationRecord:
    count = s.scalar(
        select(func.count()).select_from(Message).where(Message.conversation_id == conv.id)
    )
    return ConversationRecord.from_orm(conv, count or 0)


def _same_slot(sibling: Any, msg: Any) -> tuple[ColumnElement[bool], ...]:
    """Conditions for `sibling` being a version of `msg` (same conversation, parent, role).

    `msg` may be a loaded Message or a (correlated) Message entity in a query.
    """
    return (
        sibling.conversation_id == msg.conversation_id,
        # IS, not =: root messages have a NULL parent and are versions of each other.
        sibling.parent_id.is_not_distinct_from(msg.parent_id),
        sibling.role == msg.role,
    )


def _message_record(s: Session, msg: Message) -> MessageRecord:
    ids = list(s.scalars(select(Message.id).where(*_same_slot(Message, msg)).order_by(Message.id)))
    return MessageRecord.from_orm(msg, ids.index(msg.id) + 1, len(ids))


def _thread_statement() -> Select[tuple[Message, int, int]]:
    # Walk up from the leaf in SQL (one query, index lookups only), instead of loading every
    # message of a long chat: its cost follows the thread's length, not the tree's size.
    up = (
        select(Message.id, Message.parent_id, literal(0).label("depth"))
        .where(Message.id == bindparam("leaf"), Message.conversation_id == bindparam("cid"))
        .cte("up", recursive=True)
    )
    step = aliased(Message)
    up = up.union_all(
        select(step.id, step.parent_id, up.c.depth + 1).where(step.id == up.c.parent_id)
    )
    sibling = aliased(Message)
    slot = _same_slot(sibling, Message)
    version_count = select(func.count()).where(*slot).scalar_subquery()
    version_index = select(func.count()).where(*slot, sibling.id <= Message.id).scalar_subquery()
    return (
        select(Message, version_index, version_count)
        .join(up, up.c.id == Message.id)
        .order_by(up.c.depth.desc())
    )


# Built once: constructing this statement costs more than running it on a short thread.
_THREAD = _thread_statement()


def _thread(s: Session, cid: int, leaf_id: int) -> list[MessageRecord]:
    rows = s.execute(_THREAD, {"leaf": leaf_id, "cid": cid})
    return [MessageRecord.from_orm(m, index, count) for m, index, count in rows]

"""SQLAlchemy ORM models. SQLite is the source of truth for everything the user has said.

Messages form a tree per conversation: a message's parent is the message it answers or follows.
Regenerating a reply adds a sibling under the same parent (a new *version*), so earlier versions
are never overwritten. `Conversation.current_leaf_id` marks the end of the thread the user sees.
Schema changes go through Alembic migrations in `migrations/versions`, never `create_all`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores timezone-aware UTC datetimes; SQLite itself keeps no timezone."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use ghostdesk.core.store.models.utcnow()")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    # Named constraints: SQLite can only change a table by copying it ("batch" migrations), and
    # Alembic can only drop or alter a constraint there if it has a name to find it by.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


# AUTOINCREMENT: SQLite would otherwise reuse the id of a deleted row, and a stale reference
# (an open chat in the UI, a rating, a memory index entry) would then point at the wrong row.
_NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="New chat")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The last message of the thread shown to the user (null for an empty chat). Not a FK
    # constraint: it would make conversation and message rows mutually dependent.
    current_leaf_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    persona_name: Mapped[str] = mapped_column(String(100), default="")

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", passive_deletes=True
    )


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), nullable=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))  # "user" | "assistant" | "system"
    content: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # "complete" | "stopped" (user pressed Stop; content is what was generated) | "error"
    status: Mapped[str] = mapped_column(String(16), default="complete")
    # What produced an assistant message: model file name + sha/size, settings, adapter later.
    model_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    generation_settings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Generation stats for assistant messages.
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    generation_seconds: Mapped[float | None] = mapped_column(nullable=True)
    tokens_per_second: Mapped[float | None] = mapped_column(nullable=True)
    first_token_seconds: Mapped[float | None] = mapped_column(nullable=True)
    # Turns left out of the prompt to fit the context window (0 = whole thread was used).
    dropped_turns: Mapped[int] = mapped_column(Integer, default=0)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


# --- memory ---
# Memory crystals and the companion's state vector (see docs/memory.md). SQLite holds every
# vector; the hnswlib index in <data>/memory/ is only a cache rebuilt from these rows.


class Crystal(Base):
    """One remembered thing: a short text and its embedding."""

    __tablename__ = "crystals"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "fact" | "manual" | "document"
    text: Mapped[str] = mapped_column(Text)
    # Where a document passage came from ("notes.md, passage 3"); null for facts.
    source: Mapped[str | None] = mapped_column(String(500), nullable=True)
    importance: Mapped[float] = mapped_column(default=0.5)  # 0..1
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    # Archived crystals stay here, searchable and restorable, but are not in the hot index.
    # Indexed: the index's (archived, id) pairs are what its checksum is computed over.
    archived: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_recalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    recall_count: Mapped[int] = mapped_column(Integer, default=0)
    # The embedding: `dim` little-endian float32 values, L2-normalized, made by `embed_model`.
    embed_model: Mapped[str] = mapped_column(String(300))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class CrystalSource(Base):
    """A message a crystal was made from (a crystal merged from several has several)."""

    __tablename__ = "crystal_sources"

    crystal_id: Mapped[int] = mapped_column(
        ForeignKey("crystals.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class CrystalRecall(Base):
    """Provenance: a crystal that was recalled into the prompt of a reply."""

    __tablename__ = "crystal_recalls"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    crystal_id: Mapped[int] = mapped_column(
        ForeignKey("crystals.id", ondelete="CASCADE"), index=True
    )
    score: Mapped[float] = mapped_column()
    rank: Mapped[int] = mapped_column(Integer)


class CompanionState(Base):
    """The companion's state vector S_t: one row (id 1), updated every turn."""

    __tablename__ = "companion_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    embed_model: Mapped[str] = mapped_column(String(300))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    turn_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationMemory(Base):
    """Per conversation: how far its turns have been offered to crystallization."""

    __tablename__ = "conversation_memory"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    # Messages with a larger id have not been crystallized yet (not a FK: a message may go).
    crystallized_through_id: Mapped[int] = mapped_column(Integer, default=0)
    pending_turns: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- feedback ---
# The reward ledger (see docs/feedback.md): every rating, comment, better reply and implicit
# signal on a companion reply, and the weights that turn them into a reward.


class FeedbackEvent(Base):
    """One piece of feedback on one companion reply. Rows are never deleted while the reply
    exists: un-rating sets `status` to "cleared", dismissing a signal to "dismissed"."""

    __tablename__ = "feedback_events"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    # explicit: "up" | "down" | "laugh" | "comment" | "better_reply";
    # implicit: "laughter" | "understood" | "scorn" | "continuation" | "abandoned"
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # "explicit" | "implicit"
    # The weight the event carried when recorded (the reward uses the reward_weights table).
    weight: Mapped[float] = mapped_column(default=0.0)
    # "active" | "cleared" (explicit); "pending" | "confirmed" | "dismissed" | "active" (implicit)
    status: Mapped[str] = mapped_column(String(16), index=True)
    # The words of the user's message that triggered an implicit signal.
    phrase: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # A comment, or the user's better version of the reply.
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Where an implicit signal came from: rule id, the user message, its span.
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class RewardWeight(Base):
    """The reward one feedback kind carries (defaults from the product brief)."""

    __tablename__ = "reward_weights"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    weight: Mapped[float] = mapped_column()

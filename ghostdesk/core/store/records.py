"""Immutable snapshots of stored rows, safe to hand to other threads and to the UI.

ORM objects belong to one session and may lazy-load or expire; these records are plain frozen
dataclasses copied out while the session is open, so nothing outside the store touches SQLite.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ghostdesk.core.store.models import Conversation, Message


@dataclass(frozen=True)
class ConversationRecord:
    id: int
    title: str
    created_at: datetime
    updated_at: datetime
    current_leaf_id: int | None
    persona_name: str
    # Every message stored in the chat, all versions included.
    message_count: int

    @classmethod
    def from_orm(cls, conversation: Conversation, message_count: int) -> ConversationRecord:
        return cls(
            id=conversation.id,
            title=conversation.title,
            created_at=conversation.created_at,
            updated_at=conversation.updated_at,
            current_leaf_id=conversation.current_leaf_id,
            persona_name=conversation.persona_name,
            message_count=message_count,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable dict (times in ISO 8601, UTC)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["created_at"] = self.created_at.isoformat()
        data["updated_at"] = self.updated_at.isoformat()
        return data


@dataclass(frozen=True)
class MessageRecord:
    id: int
    conversation_id: int
    parent_id: int | None
    role: str
    content: str
    created_at: datetime
    status: str
    model_name: str | None
    generation_settings: dict[str, Any] | None
    prompt_tokens: int | None
    completion_tokens: int | None
    generation_seconds: float | None
    tokens_per_second: float | None
    first_token_seconds: float | None
    dropped_turns: int
    # Versions are the messages with the same conversation, parent and role, ordered by id:
    # a regenerated reply is version 2 of 2, and so on. `version_index` is 1-based.
    version_index: int
    version_count: int

    @classmethod
    def from_orm(cls, message: Message, version_index: int, version_count: int) -> MessageRecord:
        return cls(
            id=message.id,
            conversation_id=message.conversation_id,
            parent_id=message.parent_id,
            role=message.role,
            content=message.content,
            created_at=message.created_at,
            status=message.status,
            model_name=message.model_name,
            # A copy: the record must not share a mutable dict with the session's object.
            generation_settings=copy.deepcopy(message.generation_settings),
            prompt_tokens=message.prompt_tokens,
            completion_tokens=message.completion_tokens,
            generation_seconds=message.generation_seconds,
            tokens_per_second=message.tokens_per_second,
            first_token_seconds=message.first_token_seconds,
            dropped_turns=message.dropped_turns,
            version_index=version_index,
            version_count=version_count,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable dict (times in ISO 8601, UTC)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["created_at"] = self.created_at.isoformat()
        return data


# Message columns a caller may set when adding a message (the rest are managed by the store).
MESSAGE_FIELDS = frozenset(
    {
        "status",
        "model_name",
        "generation_settings",
        "prompt_tokens",
        "completion_tokens",
        "generation_seconds",
        "tokens_per_second",
        "first_token_seconds",
        "dropped_turns",
    }
)

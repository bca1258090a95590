"""ConversationStore: chats, titles, message trees, versions and export."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import insert, text

from ghostdesk.core.errors import GhostDeskError, NotFoundError
from ghostdesk.core.store.conversations import (
    DEFAULT_TITLE,
    ConversationStore,
    title_from_text,
)
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import Message, utcnow

# -- conversations -------------------------------------------------------------------------


def test_create_get_and_list(store: ConversationStore, clock: Any) -> None:
    first = store.create_conversation()
    second = store.create_conversation("Plans", persona_name="Ada")
    assert first.title == DEFAULT_TITLE
    assert first.message_count == 0 and first.current_leaf_id is None
    assert second.persona_name == "Ada"
    assert store.get_conversation(second.id) == second
    assert [c.id for c in store.list_conversations()] == [second.id, first.id]

    store.add_message(first.id, "user", "bump")  # activity moves a chat to the top
    listed = store.list_conversations()
    assert [c.id for c in listed] == [first.id, second.id]
    assert listed[0].message_count == 1
    assert listed[0].updated_at == clock.now
    assert listed[0].updated_at.tzinfo is not None


def test_rename(store: ConversationStore) -> None:
    cid = store.create_conversation().id
    renamed = store.rename_conversation(cid, "  Trip   to\nLisbon ")
    assert renamed.title == "Trip to Lisbon"
    assert store.get_conversation(cid).title == "Trip to Lisbon"
    with pytest.raises(GhostDeskError, match="can't be empty"):
        store.rename_conversation(cid, "   ")
    assert store.get_conversation(cid).title == "Trip to Lisbon"


def test_missing_ids_give_clear_errors(store: ConversationStore) -> None:
    with pytest.raises(NotFoundError, match=r"^Conversation 12 does not exist\.$"):
        store.get_conversation(12)
    for call in (
        lambda: store.rename_conversation(12, "x"),
        lambda: store.delete_conversation(12),
        lambda: store.add_message(12, "user", "x"),
        lambda: store.thread(12),
        lambda: store.export_conversation(12),
    ):
        with pytest.raises(NotFoundError, match="Conversation 12 does not exist."):
            call()
    with pytest.raises(NotFoundError, match=r"^Message 99 does not exist\.$"):
        store.get_message(99)
    with pytest.raises(NotFoundError, match="Message 99"):
        store.versions(99)
    with pytest.raises(NotFoundError, match="Message 99"):
        store.select_version(99)


def test_delete_cascades_to_messages(store: ConversationStore, db: Database) -> None:
    keep = store.create_conversation()
    gone = store.create_conversation()
    store.add_message(keep.id, "user", "stays")
    user = store.add_message(gone.id, "user", "goes")
    store.add_message(gone.id, "assistant", "v1")
    store.add_message(gone.id, "assistant", "v2", parent_id=user.id)

    store.delete_conversation(gone.id)
    assert store.message_count() == 1
    assert [c.id for c in store.list_conversations()] == [keep.id]
    with pytest.raises(NotFoundError):
        store.get_message(user.id)
    with db.read_session() as s:
        orphans = s.execute(
            text("SELECT count(*) FROM messages WHERE conversation_id = :c"), {"c": gone.id}
        ).scalar()
    assert orphans == 0


def test_deleted_ids_are_not_reused(store: ConversationStore) -> None:
    old = store.create_conversation()
    old_msg = store.add_message(old.id, "user", "soon gone")
    store.delete_conversation(old.id)
    new = store.create_conversation()
    new_msg = store.add_message(new.id, "user", "fresh")
    assert new.id > old.id
    assert new_msg.id > old_msg.id


# -- titles --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "title"),
    [
        ("Hello!", "Hello!"),
        ("\n\n  What is   a monad?  \nMore details here", "What is a monad?"),
        ("a" * 60, "a" * 47 + "…"),
        (
            "Can you help me plan a three week trip through Portugal and Spain?",
            "Can you help me plan a three week trip through…",
        ),
        ("x" * 48, "x" * 48),
        ("   \n  ", ""),
    ],
)
def test_title_from_text(content: str, title: str) -> None:
    assert title_from_text(content) == title
    assert len(title_from_text(content)) <= 48


def test_first_user_message_names_the_chat(store: ConversationStore) -> None:
    cid = store.create_conversation().id
    store.add_message(cid, "system", "You are kind.")
    assert store.get_conversation(cid).title == DEFAULT_TITLE
    store.add_message(cid, "user", "Recipe ideas for a rainy Sunday\nwith kids")
    assert store.get_conversation(cid).title == "Recipe ideas for a rainy Sunday"
    store.add_message(cid, "user", "Something else entirely")
    assert store.get_conversation(cid).title == "Recipe ideas for a rainy Sunday"

    named = store.create_conversation("My own title").id
    store.add_message(named, "user", "hello")
    assert store.get_conversation(named).title == "My own title"

    blank = store.create_conversation().id
    store.add_message(blank, "user", "   ")
    assert store.get_conversation(blank).title == DEFAULT_TITLE


# -- messages, trees and versions ----------------------------------------------------------


def test_message_fields_are_stored(store: ConversationStore) -> None:
    cid = store.create_conversation().id
    store.add_message(cid, "user", "hi")
    reply = store.add_message(
        cid,
        "assistant",
        "hello",
        status="stopped",
        model_name="gemma-3-270m.gguf",
        generation_settings={"temperature": 0.7, "stop": ["<end_of_turn>"]},
        prompt_tokens=12,
        completion_tokens=3,
        generation_seconds=0.5,
        tokens_per_second=6.0,
        first_token_seconds=0.1,
        dropped_turns=2,
    )
    loaded = store.get_message(reply.id)
    assert loaded == reply
    assert loaded.generation_settings == {"temperature": 0.7, "stop": ["<end_of_turn>"]}
    assert (loaded.status, loaded.dropped_turns, loaded.prompt_tokens) == ("stopped", 2, 12)
    assert isinstance(loaded.created_at, datetime) and loaded.created_at.tzinfo is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.content = "changed"  # type: ignore[misc]

    with pytest.raises(TypeError, match="unknown message fields"):
        store.add_message(cid, "user", "x", conversation_id=5)
    with pytest.raises(ValueError, match="unknown role"):
        store.add_message(cid, "robot", "x")
    assert store.message_count() == 2


def test_parent_must_be_in_the_same_conversation(store: ConversationStore) -> None:
    a = store.create_conversation().id
    b = store.create_conversation().id
    msg = store.add_message(a, "user", "in a")
    with pytest.raises(NotFoundError, match=f"Message {msg.id} does not exist in conversation"):
        store.add_message(b, "assistant", "x", parent_id=msg.id)
    assert store.message_count() == 1


def test_regenerate_makes_versions(store: ConversationStore) -> None:
    cid = store.create_conversation().id
    user = store.add_message(cid, "user", "Tell me a joke")
    a1 = store.add_message(cid, "assistant", "joke one")
    assert a1.parent_id == user.id
    assert (a1.version_index, a1.version_count) == (1, 1)

    a2 = store.add_message(cid, "assistant", "joke two", parent_id=user.id)
    a3 = store.add_message(cid, "assistant", "joke three", parent_id=user.id)
    assert (a3.version_index, a3.version_count) == (3, 3)

    thread = store.thread(cid)
    assert [m.id for m in thread] == [user.id, a3.id]
    assert (thread[0].version_index, thread[0].version_count) == (1, 1)
    assert (thread[1].version_index, thread[1].version_count) == (3, 3)
    assert [(v.id, v.version_index, v.version_count) for v in store.versions(a2.id)] == [
        (a1.id, 1, 3),
        (a2.id, 2, 3),
        (a3.id, 3, 3),
    ]
    assert store.get_message(a1.id).version_count == 3

    conv = store.select_version(a1.id)
    assert conv.current_leaf_id == a1.id
    assert [m.content for m in store.thread(cid)] == ["Tell me a joke", "joke one"]
    assert store.thread(cid)[1].version_index == 1


def test_continuing_an_older_version_branches(store: ConversationStore) -> None:
    cid = store.create_conversation().id
    u1 = store.add_message(cid, "user", "q1")
    a1 = store.add_message(cid, "assistant", "a1")
    store.add_message(cid, "user", "q2 after a1")
    store.add_message(cid, "assistant", "a2 after a1")
    a1b = store.add_message(cid, "assistant", "a1 again", parent_id=u1.id)
    assert [m.content for m in store.thread(cid)] == ["q1", "a1 again"]

    # Going back to the first reply shows its whole branch, down to its newest leaf.
    store.select_version(a1.id)
    assert [m.content for m in store.thread(cid)] == ["q1", "a1", "q2 after a1", "a2 after a1"]

    # Continuing there: a new turn under the first branch; the other branch is untouched.
    q3 = store.add_message(cid, "user", "q3")
    assert [m.content for m in store.thread(cid)][-2:] == ["a2 after a1", "q3"]
    assert q3.version_count == 1
    store.select_version(a1b.id)
    assert [m.content for m in store.thread(cid)] == ["q1", "a1 again"]
    reply = store.add_message(cid, "user", "q2 after a1 again")
    assert reply.parent_id == a1b.id
    assert [m.content for m in store.thread(cid)] == ["q1", "a1 again", "q2 after a1 again"]


def test_editing_the_first_message_adds_a_root_version(store: ConversationStore) -> None:
    cid = store.create_conversation().id
    first = store.add_message(cid, "user", "original")
    store.add_message(cid, "assistant", "reply")
    edited = store.add_message(cid, "user", "edited", parent_id=None)
    assert (edited.version_index, edited.version_count) == (2, 2)
    assert [m.content for m in store.thread(cid)] == ["edited"]
    store.select_version(first.id)
    assert [m.content for m in store.thread(cid)] == ["original", "reply"]
    # Editing did not rename the chat (only the very first user message names it).
    assert store.get_conversation(cid).title == "original"


def test_select_version_picks_the_newest_child_at_each_step(store: ConversationStore) -> None:
    cid = store.create_conversation().id
    u = store.add_message(cid, "user", "u")
    a = store.add_message(cid, "assistant", "a")
    store.add_message(cid, "user", "old follow-up")
    store.add_message(cid, "user", "new follow-up", parent_id=a.id)
    store.add_message(cid, "assistant", "alt", parent_id=u.id)
    store.select_version(u.id)
    # u's newest child is "alt" (the newest id), regardless of role.
    assert [m.content for m in store.thread(cid)] == ["u", "alt"]
    store.select_version(a.id)
    assert [m.content for m in store.thread(cid)] == ["u", "a", "new follow-up"]


def test_export_is_json_with_the_whole_tree(store: ConversationStore) -> None:
    cid = store.create_conversation(persona_name="Ada").id
    user = store.add_message(cid, "user", "hi")
    store.add_message(cid, "assistant", "first", generation_settings={"seed": 1})
    store.add_message(cid, "assistant", "second", parent_id=user.id)

    data = json.loads(json.dumps(store.export_conversation(cid)))
    assert data["format"] == "ghostdesk.conversation"
    assert data["conversation"]["persona_name"] == "Ada"
    assert data["conversation"]["title"] == "hi"
    assert [m["content"] for m in data["thread"]] == ["hi", "second"]
    assert [(m["content"], m["parent_id"]) for m in data["messages"]] == [
        ("hi", None),
        ("first", user.id),
        ("second", user.id),
    ]
    assert data["messages"][1]["generation_settings"] == {"seed": 1}
    assert [m["version_index"] for m in data["messages"]] == [1, 1, 2]
    datetime.fromisoformat(data["messages"][0]["created_at"])
    datetime.fromisoformat(data["conversation"]["updated_at"])
    assert data["thread"] == [data["messages"][0], data["messages"][2]]


def test_empty_chat_has_empty_thread(store: ConversationStore) -> None:
    cid = store.create_conversation().id
    assert store.thread(cid) == []
    assert store.export_conversation(cid)["thread"] == []


def test_long_chat_thread_is_fast(db: Database, store: ConversationStore) -> None:
    cid = store.create_conversation().id
    n = 10_000
    now = utcnow()
    # Built in one transaction: 10k separate commits would only measure fsync.
    with db.session() as s:
        s.execute(
            insert(Message),
            [
                {
                    "id": i,
                    "conversation_id": cid,
                    "parent_id": i - 1 if i > 1 else None,
                    "role": "user" if i % 2 else "assistant",
                    "content": f"message number {i}",
                    "created_at": now,
                    "status": "complete",
                    "dropped_turns": 0,
                }
                for i in range(1, n + 1)
            ],
        )
        s.execute(
            text("UPDATE conversations SET current_leaf_id = :n WHERE id = :c"), {"n": n, "c": cid}
        )
    # Some regenerated replies along the way.
    for parent in (1, 501, 9001):
        store.add_message(cid, "assistant", "regenerated", parent_id=parent)
    store.select_version(n)

    started = time.perf_counter()
    thread = store.thread(cid)
    elapsed = time.perf_counter() - started
    assert len(thread) == n
    assert thread[-1].id == n
    assert (thread[1].version_index, thread[1].version_count) == (1, 2)
    # Generous for slow shared machines; typically well under half a second.
    assert elapsed < 5.0

"""Random sequences of chat operations, checked against a tiny in-memory model of the tree."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete

from ghostdesk.core.errors import NotFoundError
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import Database
from ghostdesk.core.store.models import Conversation

ROLES = st.sampled_from(["user", "assistant", "system"])


@dataclass
class ChatModel:
    """What the store should hold for one conversation: id -> (parent id, role)."""

    messages: dict[int, tuple[int | None, str]] = field(default_factory=dict)
    leaf: int | None = None

    def thread(self) -> list[int]:
        path, node = [], self.leaf
        while node is not None:
            path.append(node)
            node = self.messages[node][0]
        return path[::-1]

    def versions(self, mid: int) -> list[int]:
        return sorted(m for m, slot in self.messages.items() if slot == self.messages[mid])

    def branching(self) -> list[int]:
        """Messages with other versions, and those with a fork somewhere below them."""
        children: dict[int | None, int] = {}
        for parent, _ in self.messages.values():
            children[parent] = children.get(parent, 0) + 1
        found = {m for m in self.messages if len(self.versions(m)) > 1}
        for fork in (m for m in self.messages if children.get(m, 0) > 1):
            node: int | None = fork
            while node is not None:
                found.add(node)
                node = self.messages[node][0]
        return sorted(found)

    def newest_leaf_below(self, mid: int) -> int:
        while True:
            children = [m for m, (parent, _) in self.messages.items() if parent == mid]
            if not children:
                return mid
            mid = max(children)


class ChatMachine(RuleBasedStateMachine):
    db: Database  # one database for all runs (opening one per run is the slow part)

    def __init__(self) -> None:
        super().__init__()
        with self.db.session() as s:
            s.execute(delete(Conversation))  # messages go with them (foreign-key cascade)
        self.store = ConversationStore(self.db)
        self.chats: dict[int, ChatModel] = {}
        self.deleted: set[int] = set()

    @initialize()
    def first_chat(self) -> None:
        self.create()

    # Few chats, so that the steps go into deep and branching trees.
    @precondition(lambda self: len(self.chats) < 2)
    @rule()
    def create(self) -> None:
        self.chats[self.store.create_conversation().id] = ChatModel()

    @precondition(lambda self: self.chats)
    @rule(data=st.data(), roles=st.lists(ROLES, min_size=1, max_size=3))
    def continue_thread(self, data: st.DataObject, roles: list[str]) -> None:
        cid = data.draw(st.sampled_from(sorted(self.chats)))
        chat = self.chats[cid]
        for role in roles:
            msg = self.store.add_message(cid, role, f"{role} says hi")
            assert msg.parent_id == chat.leaf
            chat.messages[msg.id] = (chat.leaf, role)
            chat.leaf = msg.id

    @precondition(lambda self: any(c.messages for c in self.chats.values()))
    @rule(data=st.data())
    def regenerate(self, data: st.DataObject) -> None:
        """A new version of a message in the visible thread (regenerate or edit)."""
        cid = data.draw(st.sampled_from(sorted(c for c, m in self.chats.items() if m.messages)))
        chat = self.chats[cid]
        target = data.draw(st.sampled_from(chat.thread()))
        parent, role = chat.messages[target]
        msg = self.store.add_message(cid, role, "another version", parent_id=parent)
        chat.messages[msg.id] = (parent, role)
        chat.leaf = msg.id
        assert msg.version_count == len(chat.versions(msg.id))
        assert msg.version_index == msg.version_count

    @precondition(lambda self: any(c.messages for c in self.chats.values()))
    @rule(data=st.data())
    def select_version(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(sorted(c for c, m in self.chats.items() if m.messages)))
        chat = self.chats[cid]
        # Mostly messages where the choice matters: ones with versions, or with branches below.
        interesting = chat.branching()
        use_interesting = data.draw(st.integers(0, 3)) > 0
        pool = interesting if interesting and use_interesting else list(chat.messages)
        mid = data.draw(st.sampled_from(sorted(pool)))
        conv = self.store.select_version(mid)
        chat.leaf = chat.newest_leaf_below(mid)
        assert conv.current_leaf_id == chat.leaf

    @precondition(lambda self: len(self.chats) > 1)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(sorted(self.chats)))
        self.store.delete_conversation(cid)
        del self.chats[cid]
        self.deleted.add(cid)

    @invariant()
    def store_matches_the_model(self) -> None:
        listed = {c.id: c for c in self.store.list_conversations()}
        assert set(listed) == set(self.chats)  # deleted chats are gone, others all there
        assert self.store.message_count() == sum(len(c.messages) for c in self.chats.values())
        for cid, chat in self.chats.items():
            assert listed[cid].message_count == len(chat.messages)
            thread = self.store.thread(cid)
            assert [m.id for m in thread] == chat.thread()
            if thread:
                # A parent chain from a root to the current leaf.
                assert thread[0].parent_id is None
                assert thread[-1].id == listed[cid].current_leaf_id
            for earlier, later in zip(thread, thread[1:], strict=False):
                assert later.parent_id == earlier.id
            for m in thread:
                versions = chat.versions(m.id)
                assert m.version_count == len(versions)
                assert m.version_index == versions.index(m.id) + 1
                assert m.conversation_id == cid
        for cid in self.deleted:
            try:
                self.store.get_conversation(cid)
            except NotFoundError:
                continue
            raise AssertionError(f"conversation {cid} survived deletion")


def test_chat_operations_keep_the_tree_consistent(db: Database) -> None:
    ChatMachine.db = db
    run_state_machine_as_test(
        ChatMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=12,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )

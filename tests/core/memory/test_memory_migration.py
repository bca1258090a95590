"""Migration 0002 adds the memory tables and keeps every conversation; the memory tables'
foreign keys behave as the models say."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ghostdesk.core.paths import DataPaths
from ghostdesk.core.store.backup import list_backups
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import HEAD_REVISION, Database, known_revisions
from tests.core.store.schema_steps import migrate, run_sql

MEMORY_TABLES = {"crystals", "crystal_sources", "crystal_recalls", "companion_state",
                 "conversation_memory"}
OLD_CHAT = [
    "INSERT INTO conversations (id, title, created_at, updated_at, current_leaf_id, "
    "persona_name) VALUES (7, 'Old chat', '2025-01-02 03:04:05.000000', "
    "'2025-01-02 03:04:06.000000', 71, '')",
    "INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at, "
    "status, dropped_turns) VALUES (70, 7, NULL, 'user', 'hello from the past', "
    "'2025-01-02 03:04:06.000000', 'complete', 0)",
    "INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at, "
    "status, dropped_turns) VALUES (71, 7, 70, 'assistant', 'hi back', "
    "'2025-01-02 03:04:07.000000', 'complete', 0)",
]


def _tables(path: Path) -> set[str]:
    raw = sqlite3.connect(path)
    try:
        return {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        raw.close()


def test_0002_follows_0001():
    assert known_revisions()[:2] == ["0001", "0002"]


def test_upgrade_from_0001_keeps_conversations(paths: DataPaths):
    migrate(paths.database, "0001")
    run_sql(paths.database, OLD_CHAT)
    assert not MEMORY_TABLES & _tables(paths.database)

    with Database.open(paths.database, paths.backups) as db:
        assert db.schema_revision() == HEAD_REVISION
        assert db.integrity_check() == "ok"
        thread = ConversationStore(db).thread(7)
        assert [m.content for m in thread] == ["hello from the past", "hi back"]
    assert _tables(paths.database) >= MEMORY_TABLES
    assert list_backups(paths.backups, "before-upgrade-0001")


def test_downgrade_removes_only_memory(paths: DataPaths):
    with Database.open(paths.database, paths.backups) as db:
        ConversationStore(db).create_conversation(title="Keep me")
    migrate(paths.database, "0001", down=True)
    assert not MEMORY_TABLES & _tables(paths.database)
    with Database.open(paths.database, paths.backups) as db:
        assert [c.title for c in ConversationStore(db).list_conversations()] == ["Keep me"]


def test_memory_tables_use_autoincrement_where_ids_are_referenced(db: Database):
    with db.read_session() as s:
        rows = s.connection().exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE name IN ('crystals', 'crystal_recalls')")
        schema = dict(rows.all())
    assert all("AUTOINCREMENT" in sql for sql in schema.values())


def test_forgotten_ids_are_never_reused(memory, hashing):
    first = memory.add_crystal("grey cat called pixel").crystal
    memory.forget(first.id)
    second = memory.add_crystal("grey cat called pixel").crystal
    assert second.id > first.id

"""Migrations: the schema they build equals the models, and upgrades keep every conversation."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from ghostdesk.core.errors import StorageError
from ghostdesk.core.paths import DataPaths
from ghostdesk.core.store import db as db_module
from ghostdesk.core.store.backup import list_backups
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import (
    HEAD_REVISION,
    Database,
    alembic_config,
    known_revisions,
)
from ghostdesk.core.store.models import Base
from tests.core.store.schema_steps import migrate, run_sql

_CHAT_0001 = [
    "INSERT INTO conversations (id, title, created_at, updated_at, current_leaf_id, "
    "persona_name) VALUES (7, 'Old chat', '2025-01-02 03:04:05.000000', "
    "'2025-01-02 03:04:06.000000', 70, '')",
    "INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at, "
    "status, dropped_turns) VALUES (70, 7, NULL, 'user', 'hello from the past', "
    "'2025-01-02 03:04:06.000000', 'complete', 0)",
]
_MEMORY_0002 = [
    "INSERT INTO crystals (id, kind, text, source, importance, pinned, archived, created_at, "
    "updated_at, recall_count, embed_model, dim, vector) VALUES (3, 'fact', 'likes tea', NULL, "
    "0.5, 0, 0, '2025-01-02 03:04:07.000000', '2025-01-02 03:04:07.000000', 0, 'embedder', 1, "
    "X'0000803F')",
    "INSERT INTO crystal_sources (crystal_id, message_id) VALUES (3, 70)",
    "INSERT INTO conversation_memory (conversation_id, crystallized_through_id, pending_turns, "
    "updated_at) VALUES (7, 70, 0, '2025-01-02 03:04:07.000000')",
]
_FEEDBACK_0003 = [
    # A reply on another branch (the thread still ends at 70), rated and with a signal.
    "INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at, "
    "status, dropped_turns) VALUES (71, 7, 70, 'assistant', 'hello back', "
    "'2025-01-02 03:04:08.000000', 'complete', 0)",
    "INSERT INTO feedback_events (id, message_id, kind, source, weight, status, phrase, text, "
    "created_at, updated_at, detail) VALUES (5, 71, 'up', 'explicit', 1.0, 'active', NULL, "
    "NULL, '2025-01-02 03:04:09.000000', '2025-01-02 03:04:09.000000', NULL)",
    "INSERT INTO feedback_events (id, message_id, kind, source, weight, status, phrase, text, "
    "created_at, updated_at, detail) VALUES (6, 71, 'laughter', 'implicit', 1.0, 'pending', "
    "'haha', NULL, '2025-01-02 03:04:10.000000', '2025-01-02 03:04:10.000000', "
    "'{\"rule_id\": \"en.laughter.haha\"}')",
    "UPDATE reward_weights SET weight = 0.5 WHERE kind = 'laugh'",
]

# For every revision: raw SQL that stores data in *that* schema, as the GhostDesk release
# that had it would have (conversation 7 with message 70 at least). A new revision must add
# its entry here, so upgrades are tested from every schema ever released.
SAMPLE_ROWS: dict[str, list[str]] = {
    "0001": _CHAT_0001,
    "0002": _CHAT_0001 + _MEMORY_0002,
    "0003": _CHAT_0001 + _MEMORY_0002 + _FEEDBACK_0003,
}


def _row_counts(path: Path) -> dict[str, int]:
    raw = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in raw.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
            )
        ]
        return {t: raw.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        raw.close()


def test_migrated_schema_matches_models(db: Database) -> None:
    engine = create_engine(f"sqlite:///{db.path}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_ids_are_never_reused(db: Database) -> None:
    # compare_metadata can't see AUTOINCREMENT; without it SQLite reuses deleted ids.
    with db.read_session() as s:
        rows = s.connection().exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE name IN ('conversations', 'messages')"
        )
        schema = dict(rows.all())
    assert set(schema) == {"conversations", "messages"}
    assert all("AUTOINCREMENT" in sql for sql in schema.values())


def test_migrations_run_from_a_plain_url_too(tmp_path: Path) -> None:
    # How a developer's tooling runs them: no connection handed over, just sqlalchemy.url.
    path = tmp_path / "dev.sqlite3"
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", f"sqlite:///{path}")
    command.upgrade(config, "head")
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == HEAD_REVISION
    finally:
        engine.dispose()


def test_every_revision_has_sample_rows() -> None:
    assert set(known_revisions()) == set(SAMPLE_ROWS)


@pytest.mark.parametrize("revision", known_revisions())
def test_upgrade_from_every_revision_keeps_data(paths: DataPaths, revision: str) -> None:
    migrate(paths.database, revision)
    run_sql(paths.database, SAMPLE_ROWS[revision])
    before = _row_counts(paths.database)

    with Database.open(paths.database, paths.backups) as db:
        assert db.schema_revision() == HEAD_REVISION
        assert db.integrity_check() == "ok"
        store = ConversationStore(db)
        conv = store.get_conversation(7)
        assert conv.title == "Old chat"
        assert [m.content for m in store.thread(7)] == ["hello from the past"]
    after = _row_counts(paths.database)
    assert {table: after[table] for table in before} == before  # no row lost anywhere
    if revision != HEAD_REVISION:
        [backup] = list_backups(paths.backups, f"before-upgrade-{revision}")
        assert _row_counts(backup) == before


def test_downgrade_to_base_and_back(paths: DataPaths) -> None:
    migrate(paths.database, "head")
    migrate(paths.database, "base", down=True)
    with Database.open(paths.database, paths.backups) as db:
        assert db.schema_revision() == HEAD_REVISION
    # An empty schema holds nothing worth a backup.
    assert list_backups(paths.backups) == []


# -- upgrades past the current head, with a throwaway revision -----------------------------

_MARKER_REVISION = '''
"""Test-only revision."""
import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    # Copies and drops the parent table, as SQLite needs for most schema changes: with foreign
    # keys on, dropping it would cascade-delete every message.
    with op.batch_alter_table("conversations", recreate="always") as batch:
        batch.add_column(sa.Column("upgrade_marker", sa.Integer(), nullable=True))
    {fail}


def downgrade():
    with op.batch_alter_table("conversations", recreate="always") as batch:
        batch.drop_column("upgrade_marker")
'''


def _migrations_with_extra_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, fail: bool
) -> Path:
    """Points the app at a copy of the migrations plus revision 9001; returns the real folder."""
    real = db_module.MIGRATIONS_DIR
    copy = tmp_path / "migrations"
    shutil.copytree(db_module.MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    body = _MARKER_REVISION.format(
        down=HEAD_REVISION, fail='raise RuntimeError("migration bug")' if fail else "pass"
    )
    (copy / "versions" / "9001_marker.py").write_text(body)
    monkeypatch.setattr(db_module, "MIGRATIONS_DIR", copy)
    return real


def _chat_with_versions(paths: DataPaths) -> int:
    with Database.open(paths.database, paths.backups) as db:
        store = ConversationStore(db)
        cid = store.create_conversation().id
        user = store.add_message(cid, "user", "keep me")
        store.add_message(cid, "assistant", "first reply")
        store.add_message(cid, "assistant", "second reply", parent_id=user.id)
        return cid


def test_upgrade_takes_a_backup_first_and_keeps_the_tree(
    paths: DataPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = _chat_with_versions(paths)
    _migrations_with_extra_revision(tmp_path, monkeypatch, fail=False)

    with Database.open(paths.database, paths.backups) as db:
        assert db.schema_revision() == "9001"
        assert db.integrity_check() == "ok"
        thread = ConversationStore(db).thread(cid)
        assert [m.content for m in thread] == ["keep me", "second reply"]
        assert (thread[1].version_index, thread[1].version_count) == (2, 2)

    backups = list_backups(paths.backups, f"before-upgrade-{HEAD_REVISION}")
    assert len(backups) == 1
    assert backups[0].name.startswith("ghostdesk-")
    raw = sqlite3.connect(backups[0])
    try:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (HEAD_REVISION,)
        ]
        contents = {r[0] for r in raw.execute("SELECT content FROM messages")}
        assert contents == {"keep me", "first reply", "second reply"}
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        raw.close()


def test_failed_upgrade_changes_nothing(
    paths: DataPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = _chat_with_versions(paths)
    real = _migrations_with_extra_revision(tmp_path, monkeypatch, fail=True)

    with pytest.raises(RuntimeError, match="migration bug"):
        Database.open(paths.database, paths.backups)
    assert list_backups(paths.backups)  # the backup was taken before trying

    # Back to the real migrations: the database must be exactly as before.
    monkeypatch.setattr(db_module, "MIGRATIONS_DIR", real)
    with Database.open(paths.database, paths.backups) as db:
        assert db.schema_revision() == HEAD_REVISION
        store = ConversationStore(db)
        assert [m.content for m in store.thread(cid)] == ["keep me", "second reply"]
        with db.read_session() as s:
            info = s.connection().exec_driver_sql("PRAGMA table_info(conversations)")
            columns = {r[1] for r in info}
        assert "upgrade_marker" not in columns  # the half-done batch copy was rolled back


def test_backup_failure_stops_the_upgrade(
    paths: DataPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = _chat_with_versions(paths)
    real = _migrations_with_extra_revision(tmp_path, monkeypatch, fail=False)
    paths.backups.rmdir()
    paths.backups.write_text("not a folder")  # backups can't be written

    with pytest.raises(StorageError, match="back up"):
        Database.open(paths.database, paths.backups)
    monkeypatch.setattr(db_module, "MIGRATIONS_DIR", real)
    with Database.open(paths.database, paths.backups) as db:
        assert db.schema_revision() == HEAD_REVISION
        assert len(ConversationStore(db).thread(cid)) == 2


def test_the_start_up_fast_path_agrees_with_alembic():
    from ghostdesk.core.store.db import head_revision, newest_revision_file

    assert newest_revision_file() == head_revision()

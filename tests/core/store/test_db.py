"""Database: opening, pragmas, transactions, and clear errors when the disk or file is bad."""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import tempfile
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from ghostdesk.core.errors import StorageError
from ghostdesk.core.paths import DataPaths
from ghostdesk.core.store import db as db_module
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import HEAD_REVISION, Database
from ghostdesk.core.store.models import Conversation, Message, utcnow
from ghostdesk.core.store.storage_errors import storage_error_for


def _count(db: Database, model: type) -> int:
    with db.read_session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_open_creates_wal_database_at_head(db: Database, paths: DataPaths) -> None:
    assert paths.database.exists()
    assert db.schema_revision() == HEAD_REVISION
    assert db.integrity_check() == "ok"
    assert db.notices == []
    with db.read_session() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert s.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    with db.session() as s:
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_new_database_is_built_by_migrations(db: Database, paths: DataPaths) -> None:
    raw = sqlite3.connect(paths.database)
    try:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = raw.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        raw.close()
    assert {"conversations", "messages", "alembic_version"} <= tables
    assert version == [(HEAD_REVISION,)]


def test_reopen_keeps_data_and_takes_no_backup(paths: DataPaths) -> None:
    with Database.open(paths.database, paths.backups) as db:
        ConversationStore(db).create_conversation("Kept")
    with Database.open(paths.database, paths.backups) as db:
        assert [c.title for c in ConversationStore(db).list_conversations()] == ["Kept"]
    assert list(paths.backups.iterdir()) == []


def test_session_commits_or_rolls_back_whole(db: Database) -> None:
    now = utcnow()
    with db.session() as s:
        s.add(Conversation(title="a", created_at=now, updated_at=now))
    with pytest.raises(ZeroDivisionError), db.session() as s:
        s.add(Conversation(title="b", created_at=now, updated_at=now))
        s.flush()
        raise ZeroDivisionError
    assert _count(db, Conversation) == 1


def test_savepoints_work(db: Database) -> None:
    # pysqlite's own BEGIN handling breaks SAVEPOINT; the engine setup must make them real.
    now = utcnow()
    with db.session() as s:
        nested = s.begin_nested()
        s.add(Conversation(title="dropped", created_at=now, updated_at=now))
        s.flush()
        nested.rollback()
        s.add(Conversation(title="kept", created_at=now, updated_at=now))
    with db.read_session() as s:
        assert s.scalars(select(Conversation.title)).all() == ["kept"]


def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(Exception, match="FOREIGN KEY"), db.session() as s:
        s.add(Message(conversation_id=999, role="user", content="x", created_at=utcnow()))
    assert _count(db, Message) == 0


def test_nested_write_session_is_refused(db: Database) -> None:
    with db.session(), pytest.raises(RuntimeError, match="nested"), db.session():
        pass


def test_readers_run_while_a_write_is_open(db: Database) -> None:
    inserted, release = threading.Event(), threading.Event()

    def writer() -> None:
        with db.session() as s:
            now = utcnow()
            s.add(Conversation(title="slow", created_at=now, updated_at=now))
            s.flush()
            inserted.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert inserted.wait(10)
        assert _count(db, Conversation) == 0  # not committed yet, and the read didn't block
    finally:
        release.set()
        thread.join()
    assert _count(db, Conversation) == 1


def test_concurrent_writers_are_serialized(db: Database) -> None:
    store = ConversationStore(db)
    cids = [store.create_conversation().id for _ in range(4)]
    errors: list[BaseException] = []

    def write(cid: int) -> None:
        try:
            for i in range(15):
                store.add_message(cid, "user", f"message {i}")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(cid,)) for cid in cids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.message_count() == 60
    for cid in cids:
        assert [m.content for m in store.thread(cid)] == [f"message {i}" for i in range(15)]


def test_closed_database_refuses_sessions(paths: DataPaths) -> None:
    db = Database.open(paths.database, paths.backups)
    db.close()
    db.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"), db.read_session():
        pass


# -- damaged files -------------------------------------------------------------------------


def test_random_bytes_are_set_aside_not_deleted(paths: DataPaths) -> None:
    garbage = os.urandom(3 * 4096)
    paths.database.write_bytes(garbage)
    wal = paths.database.with_name(paths.database.name + "-wal")
    wal.write_bytes(b"old wal")

    with Database.open(paths.database, paths.backups) as db:
        assert db.schema_revision() == HEAD_REVISION
        assert db.integrity_check() == "ok"
        assert len(db.notices) == 1
        notice = db.notices[0]

    kept = [p for p in paths.root.iterdir() if re.search(r"\.corrupt-[\d-]+$", p.name)]
    assert len(kept) == 1
    assert kept[0].read_bytes() == garbage
    assert kept[0].with_name(kept[0].name + "-wal").read_bytes() == b"old wal"
    assert str(kept[0]) in notice
    assert "could not be read" in notice


def test_damaged_pages_are_detected_and_set_aside(paths: DataPaths) -> None:
    with Database.open(paths.database, paths.backups) as db:
        store = ConversationStore(db)
        cid = store.create_conversation().id
        for i in range(40):
            store.add_message(cid, "user", f"message {i} " * 100)
    # Closing the last connection checkpointed the WAL: everything is in the main file now.
    assert not paths.database.with_name(paths.database.name + "-wal").exists()
    data = bytearray(paths.database.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    # Keep the header page intact so SQLite recognises the file, then scramble b-tree pages.
    for offset in range(page, len(data), page):
        data[offset : offset + 64] = os.urandom(64)
    paths.database.write_bytes(bytes(data))

    with Database.open(paths.database, paths.backups) as db:
        assert db.notices and "kept" in db.notices[0]
        assert ConversationStore(db).list_conversations() == []
    assert any(".corrupt-" in p.name for p in paths.root.iterdir())


def test_newer_schema_is_refused_and_left_alone(paths: DataPaths) -> None:
    with Database.open(paths.database, paths.backups) as db:
        ConversationStore(db).create_conversation("from the future")
        with db.session() as s:
            s.execute(text("UPDATE alembic_version SET version_num = 'zz99'"))
    with pytest.raises(StorageError, match="newer version of GhostDesk"):
        Database.open(paths.database, paths.backups)
    raw = sqlite3.connect(paths.database)
    try:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [("zz99",)]
        assert raw.execute("SELECT title FROM conversations").fetchall() == [("from the future",)]
    finally:
        raw.close()


# -- read-only folder and full disk ----------------------------------------------------------


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_folder_gives_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StorageError) as caught:
            Database.open(folder / "ghostdesk.sqlite3", tmp_path / "backups")
    finally:
        folder.chmod(0o700)
    assert f"The data folder is read-only: {folder}" in str(caught.value)


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "data folder is read-only"),
        (OSError(errno.EROFS, "Read-only file system"), "data folder is read-only"),
        (OSError(errno.ENOSPC, "No space left on device"), "Free some disk space"),
    ],
)
def test_unwritable_folder_errors_are_actionable(
    paths: DataPaths, monkeypatch: pytest.MonkeyPatch, err: OSError, expected: str
) -> None:
    # Works as root too: the folder's write probe fails the way the OS would report it.
    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise err

    with monkeypatch.context() as patch, pytest.raises(StorageError) as caught:
        patch.setattr(db_module.tempfile, "mkstemp", refuse)
        Database.open(paths.database, paths.backups)
    assert expected in str(caught.value)
    if "read-only" in expected:
        assert str(paths.root) in str(caught.value)
    assert not paths.database.exists()


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("database or disk is full", "Free some disk space"),
        ("attempt to write a readonly database", "data folder is read-only"),
        ("disk I/O error", "disk error"),
    ],
)
def test_failed_commit_loses_nothing_and_explains(
    db: Database,
    store: ConversationStore,
    monkeypatch: pytest.MonkeyPatch,
    message: str,
    expected: str,
) -> None:
    cid = store.create_conversation().id
    first = store.add_message(cid, "user", "hello")
    before = store.get_conversation(cid)

    def failing_commit(dbapi_connection: object) -> None:
        raise sqlite3.OperationalError(message)

    with monkeypatch.context() as patch, pytest.raises(StorageError) as caught:
        patch.setattr(db._engine.dialect, "do_commit", failing_commit)
        store.add_message(cid, "assistant", "this reply never reaches the disk")

    assert expected in str(caught.value)
    assert store.get_conversation(cid) == before
    assert [m.id for m in store.thread(cid)] == [first.id]
    assert store.message_count() == 1
    # The next write works normally.
    assert store.add_message(cid, "assistant", "hi").parent_id == first.id


def test_real_disk_full_from_sqlite_rolls_back(paths: DataPaths) -> None:
    # max_page_count makes SQLite itself report SQLITE_FULL, as on a full disk.
    with Database.open(paths.database, paths.backups) as db:
        store = ConversationStore(db)
        cid = store.create_conversation().id
        store.add_message(cid, "user", "small")
        with pytest.raises(StorageError, match="Free some disk space"), db.session() as s:
            pages = s.execute(text("PRAGMA page_count")).scalar()
            s.execute(text(f"PRAGMA max_page_count = {pages}"))
            s.add(
                Message(
                    conversation_id=cid,
                    role="assistant",
                    content="x" * 500_000,
                    created_at=utcnow(),
                )
            )
    with Database.open(paths.database, paths.backups) as db:
        store = ConversationStore(db)
        assert [m.content for m in store.thread(cid)] == ["small"]
        assert db.integrity_check() == "ok"


def test_storage_error_mapping() -> None:
    here = Path(tempfile.gettempdir())
    assert storage_error_for(ValueError("nope"), here) is None
    assert storage_error_for(None, here) is None
    busy = storage_error_for(sqlite3.OperationalError("database is locked"), here / "x.db")
    assert busy is not None and "busy" in str(busy)
    damaged = storage_error_for(sqlite3.DatabaseError("file is not a database"), here / "x.db")
    assert damaged is not None and "damaged" in str(damaged)

"""The SQLite database: one engine per file, opened safely, migrated to the newest schema.

Why it is set up this way:
- WAL journal + `synchronous=FULL`: a commit that returned is on disk even if the process is
  killed or the machine loses power right after, and readers never block the writer.
- pysqlite's own transaction handling is switched off and SQLAlchemy emits BEGIN itself (see the
  SQLAlchemy SQLite dialect notes), so transactions, SAVEPOINTs and DDL behave as documented.
  Writers use BEGIN IMMEDIATE: they take SQLite's write lock up front and wait for it
  (busy_timeout), instead of failing halfway when another process writes too.
- One writer at a time in this process (a lock held for the whole transaction), short
  transactions: writes never interleave and never wait on each other inside SQLite.
- A damaged file is never deleted: it is renamed aside and a new database is started, and
  `Database.notices` tells the user where the old file is (as Firefox does for its places
  database).
- A schema upgrade is always preceded by a backup, and runs in a single transaction.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from ghostdesk.core.errors import StorageError
from ghostdesk.core.store.backup import backup_database
from ghostdesk.core.store.damaged_database import is_readable_database, set_aside
from ghostdesk.core.store.storage_errors import storage_error_for

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Execution option that marks the connections of write sessions (they BEGIN IMMEDIATE).
_WRITER = "ghostdesk_writer"
_PRAGMAS = (
    # busy_timeout first: switching to WAL needs a lock another process may briefly hold.
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=FULL",
)


def alembic_config(connection: Connection | None = None) -> Any:
    """Alembic configuration for GhostDesk's migrations; no alembic.ini is needed."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this version of GhostDesk knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def known_revisions() -> list[str]:
    """Every schema revision, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def newest_revision_file() -> str:
    """The head revision read from the migration file names ("0003_feedback.py" -> "0003"),
    without importing Alembic (~0.3 s at every start). Revisions are numbered in order; a test
    checks this always equals Alembic's own head."""
    names = (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")
    return max(p.name[:4] for p in names)


def __getattr__(name: str) -> Any:
    # HEAD_REVISION is computed by Alembic on first use only.
    if name == "HEAD_REVISION":
        return head_revision()
    raise AttributeError(name)


class Database:
    """One SQLite file. Use `Database.open`; `session()` for writes, `read_session()` for reads."""

    def __init__(self, path: Path, backups_dir: Path, engine: Engine) -> None:
        self.path = path
        self.backups_dir = backups_dir
        # Messages for the user about what happened while opening (e.g. a damaged file kept).
        self.notices: list[str] = []
        self._engine = engine
        self._write_lock = threading.Lock()
        self._writer_thread: int | None = None
        self._closed = False
        self._writes = sessionmaker(
            bind=engine.execution_options(**{_WRITER: True}), expire_on_commit=False
        )
        self._reads = sessionmaker(bind=engine, expire_on_commit=False)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, backups_dir: Path) -> Database:
        """Open (or create) the database at `path` and bring its schema to `HEAD_REVISION`.

        Raises StorageError when the folder can't be written or the disk is full. A file that
        is not a readable SQLite database is renamed to `<name>.corrupt-<time>` (with its -wal
        and -shm files) and a new database is started; `notices` says where the old one is.
        """
        path = Path(path)
        _check_folder_writable(path.parent)
        notices: list[str] = []
        if path.exists() and not is_readable_database(path):
            kept = set_aside(path)
            log.warning("database %s is damaged; kept as %s, starting a new one", path, kept)
            notices.append(
                f"Your chat database could not be read (it is damaged or not a GhostDesk "
                f"database). It was kept, unchanged, as {kept}, and a new empty database was "
                f"started. Backups are in {backups_dir}."
            )
        db = cls(path, backups_dir, _create_engine(path))
        db.notices = notices
        try:
            with db._translate_errors():
                db._migrate()
        except BaseException:
            db.close()
            raise
        return db

    def _migrate(self) -> None:
        # A writer connection (BEGIN IMMEDIATE): if two GhostDesk processes start at once, the
        # second waits for the first upgrade and then finds nothing left to do.
        with self._engine.execution_options(**{_WRITER: True}).connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            # Batch migrations copy and drop tables; with foreign keys on, dropping a table
            # would cascade-delete every message. The pragma only works outside a transaction.
            version = raw.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='alembic_version'"
            ).fetchone() and raw.execute("SELECT version_num FROM alembic_version").fetchall()
            if version and [tuple(r) for r in version] == [(newest_revision_file(),)]:
                return  # already current: the common start-up, no Alembic import needed
            from alembic import command
            from alembic.runtime.migration import MigrationContext

            raw.execute("PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():
                    current = MigrationContext.configure(conn).get_current_revision()
                    has_tables = bool(
                        conn.exec_driver_sql(
                            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                            "name != 'alembic_version' AND name NOT LIKE 'sqlite_%'"
                        ).scalar()
                    )
                head = head_revision()
                if current == head:
                    return
                if current is not None and current not in known_revisions():
                    raise StorageError(
                        f"Your chat database ({self.path}) was made by a newer version of "
                        f"GhostDesk (schema {current}).",
                        hint="Update GhostDesk to open it; it has not been changed.",
                    )
                if has_tables:
                    kept = self.backup(f"before-upgrade-{current or 'base'}")
                    log.info("backed up %s to %s before upgrading to %s", self.path, kept, head)
                with conn.begin():
                    command.upgrade(alembic_config(conn), "head")
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left dangling references: {broken[:5]}")
            finally:
                raw.execute("PRAGMA foreign_keys=ON")

    # -- transactions --------------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A short write transaction: commits when the block ends, rolls back on any error.

        Only one write transaction runs at a time. Don't open one inside another on the same
        thread (that would deadlock; it raises RuntimeError instead).
        """
        self._check_open()
        if self._writer_thread == threading.get_ident():
            raise RuntimeError("nested write session on the same thread")
        with self._write_lock:
            self._writer_thread = threading.get_ident()
            try:
                with self._translate_errors(), self._writes() as session:
                    try:
                        yield session
                        session.commit()
                    except BaseException:
                        session.rollback()
                        raise
            finally:
                self._writer_thread = None

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only snapshot; runs alongside writes (WAL), so it takes no lock."""
        self._check_open()
        with self._translate_errors(), self._reads() as session:
            try:
                yield session
            finally:
                session.rollback()

    # -- maintenance ---------------------------------------------------------------------

    def integrity_check(self) -> str:
        """SQLite's full integrity check: "ok", or the problems found, one per line."""
        with self.read_session() as s:
            rows = s.execute(text("PRAGMA integrity_check")).scalars().all()
        return "\n".join(str(r) for r in rows)

    def schema_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.read_session() as s:
            return MigrationContext.configure(s.connection()).get_current_revision()

    def backup(self, reason: str) -> Path:
        """A consistent copy in `backups_dir` (see `backup.backup_database`)."""
        try:
            return backup_database(self.path, self.backups_dir, reason)
        except (OSError, sqlite3.Error) as err:
            raise storage_error_for(err, self.backups_dir) or StorageError(
                f"GhostDesk could not back up its database to {self.backups_dir}: {err}",
                hint="Nothing was changed. Check that the folder exists and is writable.",
            ) from err

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"database {self.path} is closed")

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as err:
            mapped = storage_error_for(err.orig, self.path)
            if mapped is None:
                raise
            raise mapped from err
        except (sqlite3.Error, OSError) as err:
            mapped = storage_error_for(err, self.path)
            if mapped is None:
                raise
            raise mapped from err


# -- engine ------------------------------------------------------------------------------


def _create_engine(path: Path) -> Engine:
    engine = create_engine(
        URL.create("sqlite", database=str(path)),
        # Pooled connections move between threads, but only one thread uses one at a time.
        connect_args={"check_same_thread": False, "timeout": 5.0},
    )
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Stop pysqlite from issuing its own BEGIN (it breaks SAVEPOINT and transactional DDL).
    dbapi_connection.isolation_level = None
    for pragma in _PRAGMAS:
        row = dbapi_connection.execute(pragma).fetchone()
        if pragma.endswith("journal_mode=WAL") and row and str(row[0]).lower() != "wal":
            log.warning("SQLite refused WAL mode (got %s); concurrent reads will block", row[0])


def _on_begin(conn: Connection) -> None:
    writer = conn.get_execution_options().get(_WRITER, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


# -- the data folder ------------------------------------------------------------------


def _check_folder_writable(folder: Path) -> None:
    """Fail early, with a clear message, when the data folder can't be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".ghostdesk-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise storage_error_for(err, folder) or StorageError(
            f"GhostDesk can't use its data folder {folder}: {err.strerror or err}",
            hint="Check that the folder exists and that you may write to it.",
        ) from err

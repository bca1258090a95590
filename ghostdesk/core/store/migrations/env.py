"""Alembic environment: runs migrations on the connection that `Database.open` hands over.

`Database.open` passes its own connection in `config.attributes["connection"]`, inside an open
transaction, so the whole upgrade commits or rolls back as one (SQLite DDL is transactional when
SQLAlchemy, not pysqlite, emits BEGIN). Without a connection (a developer generating a new
revision), the URL comes from the `sqlalchemy.url` option.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from ghostdesk.core.store.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite can't ALTER most things: batch mode copies the table instead.
        render_as_batch=True,
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url set")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("GhostDesk migrations run online only, on the user's database")
run_migrations_online()

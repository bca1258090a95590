"""SQLite persistence: SQLAlchemy models, Alembic migrations, and the conversation store."""

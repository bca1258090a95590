"""Memory: crystals, their sources and recalls, the companion state vector.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Written by hand to match the memory section of `models.py` exactly; a test compares the
migrated schema with the models. Only adds tables: every conversation is kept as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crystals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=True),
        sa.Column("importance", sa.Double(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_recalled_at", sa.DateTime(), nullable=True),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.Column("recall_count", sa.Integer(), nullable=False),
        sa.Column("embed_model", sa.String(length=300), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crystals")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_crystals_archived"), "crystals", ["archived"], unique=False)
    op.create_table(
        "crystal_sources",
        sa.Column("crystal_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["crystal_id"],
            ["crystals.id"],
            name=op.f("fk_crystal_sources_crystal_id_crystals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_crystal_sources_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("crystal_id", "message_id", name=op.f("pk_crystal_sources")),
    )
    op.create_index(
        op.f("ix_crystal_sources_message_id"), "crystal_sources", ["message_id"], unique=False
    )
    op.create_table(
        "crystal_recalls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("crystal_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["crystal_id"],
            ["crystals.id"],
            name=op.f("fk_crystal_recalls_crystal_id_crystals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_crystal_recalls_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crystal_recalls")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_crystal_recalls_crystal_id"), "crystal_recalls", ["crystal_id"], unique=False
    )
    op.create_index(
        op.f("ix_crystal_recalls_message_id"), "crystal_recalls", ["message_id"], unique=False
    )
    op.create_table(
        "companion_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("embed_model", sa.String(length=300), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("turn_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companion_state")),
    )
    op.create_table(
        "conversation_memory",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("crystallized_through_id", sa.Integer(), nullable=False),
        sa.Column("pending_turns", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_memory_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_conversation_memory")),
    )


def downgrade() -> None:
    op.drop_table("conversation_memory")
    op.drop_table("companion_state")
    op.drop_index(op.f("ix_crystal_recalls_message_id"), table_name="crystal_recalls")
    op.drop_index(op.f("ix_crystal_recalls_crystal_id"), table_name="crystal_recalls")
    op.drop_table("crystal_recalls")
    op.drop_index(op.f("ix_crystal_sources_message_id"), table_name="crystal_sources")
    op.drop_table("crystal_sources")
    op.drop_index(op.f("ix_crystals_archived"), table_name="crystals")
    op.drop_table("crystals")

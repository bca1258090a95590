"""Feedback: the reward ledger and its weights.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Written by hand to match the feedback section of `models.py` exactly; a test compares the
migrated schema with the models. Only adds tables, and seeds the default weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy, not an import: a migration must keep doing what it did when it was released.
_DEFAULT_WEIGHTS = {
    "up": 1.0,
    "down": -1.0,
    "laugh": 1.0,
    "laughter": 1.0,
    "understood": 2.0,
    "scorn": -1.0,
    "continuation": 0.1,
    "abandoned": -0.5,
}


def upgrade() -> None:
    op.create_table(
        "feedback_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phrase", sa.String(length=200), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_feedback_events_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_feedback_events_message_id"), "feedback_events", ["message_id"], unique=False
    )
    op.create_index(op.f("ix_feedback_events_status"), "feedback_events", ["status"], unique=False)
    weights = op.create_table(
        "reward_weights",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_reward_weights")),
    )
    op.bulk_insert(weights, [{"kind": k, "weight": w} for k, w in _DEFAULT_WEIGHTS.items()])


def downgrade() -> None:
    op.drop_table("reward_weights")
    op.drop_index(op.f("ix_feedback_events_status"), table_name="feedback_events")
    op.drop_index(op.f("ix_feedback_events_message_id"), table_name="feedback_events")
    op.drop_table("feedback_events")

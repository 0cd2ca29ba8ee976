"""learning inbox: messages the bot did not understand, and what staff decided

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

Messages that matched nothing, were ambiguous or whose guess the resident turned
down wait in ``inbox_messages`` for staff; their decisions (a phrase is a synonym
of an item, a FAQ question, or ignored) are kept in ``learned_decisions``, apart
from the catalog YAML, and applied on top of it by every process.

The catalog document's new ``ignore`` list is left out of the hashed document while
it is empty, so stored catalog versions stay valid (no recomputation as in 0011).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "learned_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("phrase", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_learned_decisions_community_id_communities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learned_decisions")),
    )
    with op.batch_alter_table("learned_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_learned_decisions_community_id_id"), ["community_id", "id"], unique=False
        )
    op.create_table(
        "inbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("normalized", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("candidates", JSON, nullable=False),
        sa.Column("catalog_version", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_inbox_messages_community_id_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["learned_decisions.id"],
            name=op.f("fk_inbox_messages_decision_id_learned_decisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_messages")),
        sa.UniqueConstraint(
            "community_id",
            "message_key",
            "reason",
            name=op.f("uq_inbox_messages_community_id_message_key_reason"),
        ),
    )
    with op.batch_alter_table("inbox_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbox_messages_community_id_decision_id_id"),
            ["community_id", "decision_id", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_messages_community_id_decision_id_id"))
    op.drop_table("inbox_messages")
    with op.batch_alter_table("learned_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_learned_decisions_community_id_id"))
    op.drop_table("learned_decisions")

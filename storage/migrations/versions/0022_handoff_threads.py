"""handoff threads: what the resident and staff said after 转人工, until staff close it

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-09

A 转人工 was one message, and one staff reply closed it: what the resident wrote next
went to the bot. Each handoff now keeps a thread (``handoff_messages``: the
resident's later messages, keyed by the message so a retried one is kept once, and
staff replies) and stays open until staff close it (``closed_at``, ``closed_by``).
``asked``: the resident asked for a person (转人工), so what they write while it is
open goes to staff only; a handoff the bot made (a question it could not answer, a
complaint, an emergency) records their later messages and the bot still answers.
Rows answered before this migration (status ``answered``) read as closed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_at", TIME, nullable=True))
        batch_op.add_column(sa.Column("closed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("asked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "handoff_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=16), nullable=False),
        sa.Column("staff", sa.String(length=64), nullable=True),
        sa.Column("message_key", sa.String(length=200), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["handoff_id"],
            ["handoffs.id"],
            name=op.f("fk_handoff_messages_handoff_id_handoffs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_messages")),
        sa.UniqueConstraint(
            "handoff_id", "message_key", name=op.f("uq_handoff_messages_handoff_id_message_key")
        ),
    )
    op.create_index(
        op.f("ix_handoff_messages_handoff_id_at"),
        "handoff_messages",
        ["handoff_id", "at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_handoffs_community_id_openid_status"),
        "handoffs",
        ["community_id", "openid", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_handoffs_community_id_openid_status"), table_name="handoffs")
    op.drop_index(op.f("ix_handoff_messages_handoff_id_at"), table_name="handoff_messages")
    op.drop_table("handoff_messages")
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.drop_column("asked")
        batch_op.drop_column("closed_by")
        batch_op.drop_column("closed_at")

"""orders from conversations: idempotency key, own words, rating; attachments,
waiting lists and hand-offs to staff

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("message_key", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("description", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("rating", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rating_comment", sa.Text(), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_orders_community_id_message_key"), ["community_id", "message_key"]
        )
    op.create_table(
        "order_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_attachments_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_attachments")),
        sa.UniqueConstraint(
            "order_id", "message_key", name=op.f("uq_order_attachments_order_id_message_key")
        ),
    )
    op.create_index(
        op.f("ix_order_attachments_order_id"), "order_attachments", ["order_id"], unique=False
    )
    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_waitlist_entries_resident_id_residents"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["item_sessions.id"],
            name=op.f("fk_waitlist_entries_session_id_item_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entries")),
        sa.UniqueConstraint(
            "session_id", "resident_id", name=op.f("uq_waitlist_entries_session_id_resident_id")
        ),
    )
    op.create_table(
        "handoffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("answered_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_handoffs_community_id_communities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoffs")),
        sa.UniqueConstraint(
            "community_id", "message_key", name=op.f("uq_handoffs_community_id_message_key")
        ),
    )
    op.create_index(
        op.f("ix_handoffs_community_id_status_created_at"),
        "handoffs",
        ["community_id", "status", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_handoffs_community_id_status_created_at"), table_name="handoffs")
    op.drop_table("handoffs")
    op.drop_table("waitlist_entries")
    op.drop_index(op.f("ix_order_attachments_order_id"), table_name="order_attachments")
    op.drop_table("order_attachments")
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("uq_orders_community_id_message_key"), type_="unique")
        batch.drop_column("rating_comment")
        batch.drop_column("rating")
        batch.drop_column("description")
        batch.drop_column("message_key")

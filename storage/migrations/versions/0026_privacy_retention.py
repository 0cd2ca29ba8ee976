"""privacy: anonymised orders and erasure requests

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-20

Personal information is anonymised rather than deleted, so that the figures stay
true (``bot.privacy``): ``orders`` gain ``contact_removed_at`` and
``photos_removed_at`` (when each was done: the retention job's progress, so a rerun
does nothing more), and ``erasure_requests`` records each 删除我的信息 and what was
kept for orders still open.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_removed_at", TIME, nullable=True))
        batch_op.add_column(sa.Column("photos_removed_at", TIME, nullable=True))
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=True),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", TIME, nullable=False),
        sa.Column("kept", JSON, nullable=False),
        sa.Column("done_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_erasure_requests_community_id_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_erasure_requests_resident_id_residents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_requests")),
        sa.UniqueConstraint(
            "community_id",
            "message_key",
            name=op.f("uq_erasure_requests_community_id_message_key"),
        ),
    )
    op.create_index(
        op.f("ix_erasure_requests_done_at"), "erasure_requests", ["done_at"], unique=False
    )
    op.create_index(
        op.f("ix_erasure_requests_resident_id"), "erasure_requests", ["resident_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_erasure_requests_resident_id"), table_name="erasure_requests")
    op.drop_index(op.f("ix_erasure_requests_done_at"), table_name="erasure_requests")
    op.drop_table("erasure_requests")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("photos_removed_at")
        batch_op.drop_column("contact_removed_at")

"""unmet needs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Messages that matched nothing in the catalog (需求清单), recorded once per inbound
message, with the matcher's rejected guesses for staff.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "unmet_needs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=True),
        sa.Column("message_key", sa.String(length=200), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("normalized", sa.Text(), nullable=False),
        sa.Column("candidates", JSON, nullable=False),
        sa.Column("catalog_version", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_unmet_needs_community_id_communities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unmet_needs")),
        sa.UniqueConstraint(
            "community_id", "message_key", name=op.f("uq_unmet_needs_community_id_message_key")
        ),
    )
    with op.batch_alter_table("unmet_needs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_unmet_needs_community_id_created_at"),
            ["community_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("unmet_needs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unmet_needs_community_id_created_at"))

    op.drop_table("unmet_needs")

"""notices: staff tell a grid or a building something before residents ask

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-09

「5栋今日停水，预计18点恢复」: while a notice is live, a resident there whose message is
about the same thing is answered with it first and asked whether they still want to
report it. ``notice_answers`` remembers who was told (once each) and who reported
anyway, for the count staff see.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0021"
down_revision = "0019"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("grid_key", sa.String(length=64), nullable=True),
        sa.Column("building", sa.String(length=200), nullable=True),
        sa.Column("keywords", JSON, nullable=False),
        sa.Column("item_key", sa.String(length=64), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_notices_community_id_communities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notices_community_id_ends_at"), ["community_id", "ends_at"], unique=False
        )
    op.create_table(
        "notice_answers",
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("reported", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name=op.f("fk_notice_answers_notice_id_notices")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_notice_answers_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("notice_id", "resident_id", name=op.f("pk_notice_answers")),
    )


def downgrade() -> None:
    op.drop_table("notice_answers")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_community_id_ends_at"))
    op.drop_table("notices")

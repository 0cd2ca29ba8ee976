"""consents: residents' answers to the personal-information notice

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-20

个人信息保护法 expects notice and consent before a phone, an address or a photo is
collected: each answer (given, refused, withdrawn) is one row with the notice's version,
keyed by the message that gave it so a retried WeChat message records once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("notice_version", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_consents_community_id_communities")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_consents_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
        sa.UniqueConstraint(
            "community_id", "message_key", name=op.f("uq_consents_community_id_message_key")
        ),
    )
    op.create_index(op.f("ix_consents_resident_id_id"), "consents", ["resident_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_consents_resident_id_id"), table_name="consents")
    op.drop_table("consents")

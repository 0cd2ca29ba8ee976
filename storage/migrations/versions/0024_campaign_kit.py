"""campaign kit: posters' QR codes, the community's WeChat groups, posts and scans

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-10

For each safety campaign (a broadcast) staff print a poster with a permanent scene QR
code and hand a short text to grid heads for their 楼栋群. ``campaign_qrcodes`` keeps
the code WeChat made for a campaign, so it is made once; ``wechat_groups`` are the
community's groups with the grid and buildings each covers; ``group_posts`` which
groups a campaign went to (ticked by staff, with the group's buildings then);
``campaign_scans`` who scanned a poster, once per WeChat event.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaign_qrcodes",
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("scene", sa.String(length=64), nullable=False),
        sa.Column("ticket", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=300), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_campaign_qrcodes_broadcast_id_broadcasts"),
        ),
        sa.PrimaryKeyConstraint("broadcast_id", name=op.f("pk_campaign_qrcodes")),
    )
    op.create_table(
        "wechat_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("grid_key", sa.String(length=64), nullable=True),
        sa.Column("buildings", JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_wechat_groups_community_id_communities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wechat_groups")),
        sa.UniqueConstraint(
            "community_id", "name", name=op.f("uq_wechat_groups_community_id_name")
        ),
    )
    op.create_table(
        "group_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("posted_by", sa.String(length=64), nullable=False),
        sa.Column("posted_at", TIME, nullable=False),
        sa.Column("buildings", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"], ["broadcasts.id"], name=op.f("fk_group_posts_broadcast_id_broadcasts")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["wechat_groups.id"], name=op.f("fk_group_posts_group_id_wechat_groups")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_posts")),
        sa.UniqueConstraint(
            "broadcast_id", "group_id", name=op.f("uq_group_posts_broadcast_id_group_id")
        ),
    )
    op.create_table(
        "campaign_scans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=False),
        sa.Column("scanned_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_campaign_scans_broadcast_id_broadcasts"),
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_campaign_scans_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_scans")),
        sa.UniqueConstraint("message_key", name=op.f("uq_campaign_scans_message_key")),
    )
    op.create_index(
        op.f("ix_campaign_scans_broadcast_id_resident_id"),
        "campaign_scans",
        ["broadcast_id", "resident_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_campaign_scans_broadcast_id_resident_id"), table_name="campaign_scans")
    op.drop_table("campaign_scans")
    op.drop_table("group_posts")
    op.drop_table("wechat_groups")
    op.drop_table("campaign_qrcodes")

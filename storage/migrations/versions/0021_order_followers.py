"""order followers: residents who joined an order for the same problem (我也遇到)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05

Two residents of one building reporting the same leak used to make two orders, and
the unit two trips. A resident who reports a problem an open order already covers
may now join it: one row per order and resident, ``following`` or ``left``. They hear
of the order's progress like its reporter, and the unit sees how many households
reported it.

It follows 0021 (notices), which reached main first: one line of migrations.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_followers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=True),
        sa.Column("building", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_followers_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_order_followers_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_followers")),
        sa.UniqueConstraint(
            "order_id", "resident_id", name=op.f("uq_order_followers_order_id_resident_id")
        ),
    )
    with op.batch_alter_table("order_followers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_followers_resident_id_status"),
            ["resident_id", "status"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("order_followers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_followers_resident_id_status"))
    op.drop_table("order_followers")

"""resident remarks: emergencies, praise, complaints and outcomes residents report

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

The bot now reads what a resident is doing before matching a service: an emergency,
thanks naming a unit, a complaint, or the outcome of an order are not needs. Each is
kept here for staff, once per message.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resident_remarks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=32), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_resident_remarks_community_id_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_resident_remarks_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_resident_remarks_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_remarks")),
        sa.UniqueConstraint(
            "community_id",
            "message_key",
            "kind",
            name=op.f("uq_resident_remarks_community_id_message_key_kind"),
        ),
    )
    with op.batch_alter_table("resident_remarks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_resident_remarks_community_id_kind_created_at"),
            ["community_id", "kind", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_resident_remarks_unit_id_kind"), ["unit_id", "kind"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("resident_remarks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resident_remarks_unit_id_kind"))
        batch_op.drop_index(batch_op.f("ix_resident_remarks_community_id_kind_created_at"))
    op.drop_table("resident_remarks")

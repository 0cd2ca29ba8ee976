"""delivery failures: a notification knows its order and why it was not delivered

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-08

A notification that could not be delivered was only an ERROR line in the log: the
order stayed 已派单 and nobody saw it. Each outbox row now names the order it is
about (``order_id``, null for messages about no order: a broadcast's late reply, an
emergency alert, the daily digest) and, when it failed, the cause as a short code
(``cause``: no_member, setting:<VARIABLE>, not_following, …), so the console can
mark the order, tell staff why in plain words and send it again once the cause is
fixed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cause", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_order_id_orders"), "orders", ["order_id"], ["id"]
        )
        batch_op.create_index(
            batch_op.f("ix_outbox_order_id_status"), ["order_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_order_id_status"))
        batch_op.drop_constraint(batch_op.f("fk_outbox_order_id_orders"), type_="foreignkey")
        batch_op.drop_column("cause")
        batch_op.drop_column("order_id")

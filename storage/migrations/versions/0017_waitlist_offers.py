"""waitlist offers: a freed place is offered to the first in line and held for them

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

Residents on a waiting list were told 「有空位会通知您」, but the list was never read.
Each entry now has a status (waiting, offered, accepted, declined, expired), the time
the offer was made and until when the place is held, the order it became, and the
reason handing it on last failed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="waiting", nullable=False)
        )
        batch_op.add_column(sa.Column("offered_at", TIME, nullable=True))
        batch_op.add_column(sa.Column("hold_until", TIME, nullable=True))
        batch_op.add_column(sa.Column("order_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_waitlist_entries_order_id_orders"), "orders", ["order_id"], ["id"]
        )
        batch_op.create_index(
            batch_op.f("ix_waitlist_entries_session_id_status_created_at"),
            ["session_id", "status", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_waitlist_entries_status_hold_until"),
            ["status", "hold_until"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_waitlist_entries_status_hold_until"))
        batch_op.drop_index(batch_op.f("ix_waitlist_entries_session_id_status_created_at"))
        batch_op.drop_constraint(
            batch_op.f("fk_waitlist_entries_order_id_orders"), type_="foreignkey"
        )
        batch_op.drop_column("error")
        batch_op.drop_column("order_id")
        batch_op.drop_column("hold_until")
        batch_op.drop_column("offered_at")
        batch_op.drop_column("status")

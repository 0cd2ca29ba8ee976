"""reminder errors: a reminder that cannot be acted on is set aside with its reason

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

One reminder that failed (an order whose unit was retired from the catalog) rolled
back its whole batch and came first again at every poll. Each reminder now runs in a
savepoint; one that fails is marked ``failed`` and its reason kept here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_column("error")

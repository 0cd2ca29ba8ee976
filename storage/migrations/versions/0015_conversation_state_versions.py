"""conversation state versions: saves are compare-and-set

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05

A state saved on a stale reading (two messages of one resident processed at once,
after the resident lock was lost) overwrote the other save blindly. Each save now
raises the version it read, and is refused when someone else's save came first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversation_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("conversation_states", schema=None) as batch_op:
        batch_op.drop_column("version")

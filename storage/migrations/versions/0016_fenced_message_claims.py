"""message claims fenced by an owner token; deferred messages kept to be run again

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05

A claim was taken over by comparing the claimant's wall clock with the time another
host wrote, and nothing stopped the first attempt from finishing too. A claim now
carries the token of the attempt that holds it and a lease measured on the
database's clock; only the holder can record the reply. A message answered "success"
because its reply was late is stored with its claim (``payload``), so that any
process can run it again if its first process dies; ``attempts`` and ``error`` keep
one that keeps failing from being tried forever.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("processed_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("payload", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_processed_messages_deferred_done"), ["deferred", "done"], unique=False
        )
    # Claims from before: their lease is measured from when they were taken.
    op.execute("UPDATE processed_messages SET lease_until = received_at")


def downgrade() -> None:
    with op.batch_alter_table("processed_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processed_messages_deferred_done"))
        batch_op.drop_column("error")
        batch_op.drop_column("attempts")
        batch_op.drop_column("payload")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("owner")

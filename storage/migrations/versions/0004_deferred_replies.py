"""deferred replies

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

A message whose reply was not ready within WeChat's time budget is answered
"success" and its reply goes out later as a customer-service message. Retries of it
must then get "success" too, not a second copy of the reply: ``deferred`` records it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("processed_messages") as batch:
        batch.add_column(
            sa.Column("deferred", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("processed_messages") as batch:
        batch.drop_column("deferred")

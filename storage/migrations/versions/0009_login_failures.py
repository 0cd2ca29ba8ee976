"""failed logins, counted in the database (shared by every process)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=140), nullable=False),
        sa.Column("remote", sa.String(length=64), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(
        op.f("ix_login_failures_account_remote_at"),
        "login_failures",
        ["account", "remote", "at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_login_failures_account_remote_at"), table_name="login_failures")
    op.drop_table("login_failures")

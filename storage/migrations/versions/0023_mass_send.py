"""mass send: a campaign's channel plan and WeChat 群发 batches

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-10

Campaigns went to each subscriber one message at a time, as a customer-service
message inside the 48-hour window or else a template message. They now go by WeChat's
mass send: each run's followers are planned into ``mass_batches`` (up to 10,000
openids per call, each with a fixed ``client_msg_id`` so a repeated call sends
nothing twice), and each delivery row names its ``channel`` (``mass``; ``service``
for a follower whose monthly mass quota is spent but who wrote in the last 48 hours;
``none`` for one who can be reached by neither) and its ``batch_id``. Existing rows
were customer-service or template sends: they read as ``service``. The sender finds
its next customer-service message through an index of the pending rows only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mass_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("client_msg_id", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=True),
        sa.Column("first_sent_at", TIME, nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("msg_id", sa.BigInteger(), nullable=True),
        sa.Column("msg_data_id", sa.BigInteger(), nullable=True),
        sa.Column("finish_status", sa.String(length=64), nullable=True),
        sa.Column("total_count", sa.Integer(), nullable=True),
        sa.Column("filter_count", sa.Integer(), nullable=True),
        sa.Column("sent_count", sa.Integer(), nullable=True),
        sa.Column("error_count", sa.Integer(), nullable=True),
        sa.Column("finished_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["broadcast_runs.id"], name=op.f("fk_mass_batches_run_id_broadcast_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mass_batches")),
        sa.UniqueConstraint("client_msg_id", name=op.f("uq_mass_batches_client_msg_id")),
        sa.UniqueConstraint("run_id", "seq", name=op.f("uq_mass_batches_run_id_seq")),
    )
    op.create_index(
        op.f("ix_mass_batches_status_id"), "mass_batches", ["status", "id"], unique=False
    )
    op.create_index(
        op.f("ix_mass_batches_community_id_msg_id"),
        "mass_batches",
        ["community_id", "msg_id"],
        unique=False,
    )
    with op.batch_alter_table("broadcast_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=16), nullable=False, server_default="service")
        )
        batch_op.add_column(sa.Column("batch_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_broadcast_deliveries_batch_id_mass_batches"),
            "mass_batches",
            ["batch_id"],
            ["id"],
        )
        batch_op.create_index(
            batch_op.f("ix_broadcast_deliveries_resident_id_channel"),
            ["resident_id", "channel"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_broadcast_deliveries_batch_id"), ["batch_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_broadcast_deliveries_channel_id"),
            ["channel", "id"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("broadcast_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcast_deliveries_channel_id"))
        batch_op.drop_index(batch_op.f("ix_broadcast_deliveries_batch_id"))
        batch_op.drop_index(batch_op.f("ix_broadcast_deliveries_resident_id_channel"))
        batch_op.drop_constraint(
            batch_op.f("fk_broadcast_deliveries_batch_id_mass_batches"), type_="foreignkey"
        )
        batch_op.drop_column("batch_id")
        batch_op.drop_column("channel")
    op.drop_index(op.f("ix_mass_batches_community_id_msg_id"), table_name="mass_batches")
    op.drop_index(op.f("ix_mass_batches_status_id"), table_name="mass_batches")
    op.drop_table("mass_batches")

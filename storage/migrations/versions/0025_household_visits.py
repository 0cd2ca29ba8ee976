"""household visits: households per grid, grid workers, visits and their follow-ups

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-10

Door-to-door visits (下户走访) of a safety campaign: ``households`` imported from each
grid's list (one row per normalised address), ``grid_workers`` (网格员) bound to a grid
with an invite code as unit members are (``unit_invites`` gains ``community_id`` and
``grid_key``, and its ``unit_id`` may be empty for such a code), the visits they
record by chat (one per message) and the follow-ups (需跟进) a visit makes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("unit_invites", schema=None) as batch_op:
        batch_op.alter_column("unit_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("community_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("grid_key", sa.String(length=64), nullable=True))
    op.create_table(
        "households",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("grid_key", sa.String(length=64), nullable=False),
        sa.Column("building", sa.String(length=100), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("room", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("address_key", sa.String(length=200), nullable=False),
        sa.Column("bare_key", sa.String(length=200), nullable=False),
        sa.Column("elderly_alone", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("retired_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_households_community_id_communities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
        sa.UniqueConstraint(
            "community_id", "address_key", name=op.f("uq_households_community_id_address_key")
        ),
    )
    op.create_index(
        op.f("ix_households_community_id_grid_key"), "households", ["community_id", "grid_key"]
    )
    op.create_index(
        op.f("ix_households_community_id_bare_key"), "households", ["community_id", "bare_key"]
    )
    op.create_table(
        "grid_workers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("grid_key", sa.String(length=64), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("bound_at", TIME, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_grid_workers_community_id_communities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_workers")),
        sa.UniqueConstraint(
            "community_id",
            "grid_key",
            "openid",
            name=op.f("uq_grid_workers_community_id_grid_key_openid"),
        ),
    )
    op.create_index(
        op.f("ix_grid_workers_community_id_openid"), "grid_workers", ["community_id", "openid"]
    )
    op.create_table(
        "household_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("grid_key", sa.String(length=64), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_household_visits_broadcast_id_broadcasts"),
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_household_visits_community_id_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_household_visits_household_id_households"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_visits")),
        sa.UniqueConstraint(
            "community_id", "message_key", name=op.f("uq_household_visits_community_id_message_key")
        ),
    )
    op.create_index(
        op.f("ix_household_visits_household_id_broadcast_id"),
        "household_visits",
        ["household_id", "broadcast_id"],
    )
    op.create_index(
        op.f("ix_household_visits_community_id_grid_key_created_at"),
        "household_visits",
        ["community_id", "grid_key", "created_at"],
    )
    op.create_index(
        op.f("ix_household_visits_broadcast_id_outcome"),
        "household_visits",
        ["broadcast_id", "outcome"],
    )
    op.create_table(
        "visit_followups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("grid_key", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("done_by", sa.String(length=100), nullable=True),
        sa.Column("done_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_visit_followups_community_id_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_visit_followups_household_id_households"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["household_visits.id"],
            name=op.f("fk_visit_followups_visit_id_household_visits"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_followups")),
        sa.UniqueConstraint("visit_id", name=op.f("uq_visit_followups_visit_id")),
    )
    op.create_index(
        op.f("ix_visit_followups_community_id_status_grid_key"),
        "visit_followups",
        ["community_id", "status", "grid_key"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_visit_followups_community_id_status_grid_key"), table_name="visit_followups"
    )
    op.drop_table("visit_followups")
    op.drop_index(op.f("ix_household_visits_broadcast_id_outcome"), table_name="household_visits")
    op.drop_index(
        op.f("ix_household_visits_community_id_grid_key_created_at"),
        table_name="household_visits",
    )
    op.drop_index(
        op.f("ix_household_visits_household_id_broadcast_id"), table_name="household_visits"
    )
    op.drop_table("household_visits")
    op.drop_index(op.f("ix_grid_workers_community_id_openid"), table_name="grid_workers")
    op.drop_table("grid_workers")
    op.drop_index(op.f("ix_households_community_id_bare_key"), table_name="households")
    op.drop_index(op.f("ix_households_community_id_grid_key"), table_name="households")
    op.drop_table("households")
    op.execute("DELETE FROM unit_invites WHERE unit_id IS NULL")
    with op.batch_alter_table("unit_invites", schema=None) as batch_op:
        batch_op.drop_column("grid_key")
        batch_op.drop_column("community_id")
        batch_op.alter_column("unit_id", existing_type=sa.Integer(), nullable=False)

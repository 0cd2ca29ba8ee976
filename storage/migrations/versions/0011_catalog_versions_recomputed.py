"""catalog versions recomputed: a catalog's lexicon is now hashed in term order

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

``Catalog.version`` is a hash of the validated document. Until now the lexicon was
hashed in the file's order, so reordering its entries made a "new" catalog. The
document now keeps the lexicon sorted, which changes the version of any stored
catalog whose lexicon was not sorted. Each process compares the newest stored
version with the one it computes for the catalog it serves: left as they were, the
two would never agree and every process would reload its catalog every few seconds.
So the stored versions are recomputed here, with the code that computes them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from catalog.model import Catalog

    rows = sa.table(
        "catalog_versions",
        sa.column("id", sa.Integer()),
        sa.column("version", sa.String()),
        sa.column("document", sa.Text()),
    )
    connection = op.get_bind()
    for row_id, version, document in connection.execute(
        sa.select(rows.c.id, rows.c.version, rows.c.document)
    ):
        recomputed = Catalog.from_json(document).version
        if recomputed != version:
            connection.execute(rows.update().where(rows.c.id == row_id).values(version=recomputed))


def downgrade() -> None:
    """Nothing to undo: the previous code recomputes what it needs on import."""

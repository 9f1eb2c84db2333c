"""fold state for incremental status derivation

The timeline consumer keeps, per shipment and per leg, where its status derivation stands (the
sort key of the last event folded in and the modules it saw), so that a batch folds in only its new
events; NULL means "derive from all events afresh" (rows written before this revision).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("shipment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("derivation", _JSON, nullable=True))
    with op.batch_alter_table("leg", schema=None) as batch_op:
        batch_op.add_column(sa.Column("derivation", _JSON, nullable=True))


def downgrade() -> None:
    # recreate="never": recreating shipment would cascade-delete its legs (see 0003).
    with op.batch_alter_table("leg", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("derivation")
    with op.batch_alter_table("shipment", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("derivation")

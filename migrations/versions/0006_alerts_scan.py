"""alerts: the shipment's tracking number on its alerts

A shipment alert keeps the registered number of its shipment (written by the scan when it opens),
so the operator API and console need not read the timeline's ``shipment`` table. Alerts opened
before this revision get it from their shipment here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("tracking_number", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE alert SET tracking_number = ("
        " SELECT s.tracking_number FROM shipment s WHERE s.id = alert.shipment_id)"
        " WHERE kind = 'shipment' AND shipment_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("alert", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("tracking_number")

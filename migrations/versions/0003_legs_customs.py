"""legs, customs state, renormalisation and poll scheduling

Shipment customs state and merge pointer; per-leg derived state and the merchant's pin; when a
stored event was last corrected by a renormalisation; poll targets that know their leg's substatus
and module and record carrier re-detection; a token bucket per carrier shared by every poller.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-26 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shared.db

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("shipment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customs", _JSON, nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", sa.Uuid(), nullable=True))

    with op.batch_alter_table("leg", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("detected", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("status", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("substatus", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("module", sa.String(length=16), nullable=True))

    with op.batch_alter_table("tracking_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("renormalised_at", shared.db.UtcDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("poll_target", schema=None) as batch_op:
        batch_op.add_column(sa.Column("substatus", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("module", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("detected", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("redetected_to", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("redetected_from", sa.String(length=40), nullable=True))

    op.create_table(
        "poll_quota",
        sa.Column("carrier", sa.String(length=40), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("carrier", name=op.f("pk_poll_quota")),
    )


def downgrade() -> None:
    op.drop_table("poll_quota")
    # recreate="never": SQLite (3.35+) drops plain columns in place. Recreating a parent table such
    # as shipment would run an implicit DELETE on it, and ON DELETE CASCADE would empty its legs.
    with op.batch_alter_table("poll_target", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("redetected_from")
        batch_op.drop_column("redetected_to")
        batch_op.drop_column("detected")
        batch_op.drop_column("module")
        batch_op.drop_column("substatus")

    with op.batch_alter_table("tracking_event", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("renormalised_at")

    with op.batch_alter_table("leg", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("module")
        batch_op.drop_column("substatus")
        batch_op.drop_column("status")
        batch_op.drop_column("detected")

    with op.batch_alter_table("shipment", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("customs")

"""alerts: stale rules, alerts, learned thresholds, carrier poll outcomes

Merges the two heads (merchant webhooks, legs and customs). Stored stale rules (global or per
tenant); alerts with one unresolved row per (shipment, rule) and per (carrier, rule); the p90 dwell
learned per lane, carrier and status; poll outcomes per carrier and minute (carrier health); the
indexes the alerts scan walks on shipments and legs. The webhooks' own quiet-shipment timer goes
(``webhook_shipment_state.stale_notified_at``): ``shipment.stale`` now follows opened alerts.

Revision ID: 0004
Revises: 0002, 0003
Create Date: 2026-11-27 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shared.db

revision = "0004"
down_revision = ("0002", "0003")
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_TS = shared.db.UtcDateTime(timezone=True)
_ACTIVE = "status NOT IN ('delivered', 'returned') AND merged_into_id IS NULL"
_UNRESOLVED = "resolved_at IS NULL"


def _where(condition: str) -> dict[str, sa.TextClause]:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade() -> None:
    op.create_table(
        "alert_rule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("module", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("substatus", sa.String(length=40), nullable=True),
        sa.Column("carrier", sa.String(length=40), nullable=True),
        sa.Column("lane_origin", sa.String(length=2), nullable=True),
        sa.Column("lane_destination", sa.String(length=2), nullable=True),
        sa.Column("max_silence_s", sa.Float(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("learned", sa.Boolean(), nullable=False),
        sa.Column("floor_s", sa.Float(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_alert_rule_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rule")),
    )
    op.create_index(
        "uq_alert_rule_global_key",
        "alert_rule",
        ["key"],
        unique=True,
        **_where("tenant_id IS NULL"),
    )
    op.create_index(
        "uq_alert_rule_tenant_key",
        "alert_rule",
        ["tenant_id", "key"],
        unique=True,
        **_where("tenant_id IS NOT NULL"),
    )

    op.create_table(
        "alert",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rule_key", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("shipment_id", sa.Uuid(), nullable=True),
        sa.Column("carrier", sa.String(length=40), nullable=True),
        sa.Column("lane", sa.String(length=8), nullable=True),
        sa.Column("module", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("substatus", sa.String(length=40), nullable=True),
        sa.Column("threshold_s", sa.Float(), nullable=False),
        sa.Column("threshold_source", sa.String(length=64), nullable=False),
        sa.Column("last_event_at", _TS, nullable=True),
        sa.Column("silent_since", _TS, nullable=True),
        sa.Column("detail", _JSON, nullable=True),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("acknowledged_at", _TS, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("snoozed_until", _TS, nullable=True),
        sa.Column("snoozed_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name=op.f("fk_alert_tenant_id_tenant"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
    )
    op.create_index(
        "uq_alert_open_shipment",
        "alert",
        ["shipment_id", "rule_key"],
        unique=True,
        **_where(f"kind = 'shipment' AND {_UNRESOLVED}"),
    )
    op.create_index(
        "uq_alert_open_carrier",
        "alert",
        ["carrier", "rule_key"],
        unique=True,
        **_where(f"kind = 'carrier' AND {_UNRESOLVED}"),
    )
    op.create_index(
        "uq_alert_spell",
        "alert",
        ["shipment_id", "rule_key", "silent_since"],
        unique=True,
        **_where("kind = 'shipment'"),
    )
    op.create_index("ix_alert_feed", "alert", ["state", "opened_at", "id"])
    op.create_index("ix_alert_tenant_feed", "alert", ["tenant_id", "state", "opened_at", "id"])
    op.create_index("ix_alert_updated", "alert", ["updated_at", "id"])
    op.create_index(
        "ix_alert_carrier", "alert", ["carrier", "resolved_at"], **_where("kind = 'carrier'")
    )

    op.create_table(
        "alert_learned_threshold",
        sa.Column("lane_origin", sa.String(length=2), nullable=False),
        sa.Column("lane_destination", sa.String(length=2), nullable=False),
        sa.Column("carrier", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("substatus", sa.String(length=40), nullable=False),
        sa.Column("p90_s", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("computed_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint(
            "lane_origin",
            "lane_destination",
            "carrier",
            "status",
            "substatus",
            name=op.f("pk_alert_learned_threshold"),
        ),
    )

    op.create_table(
        "carrier_health",
        sa.Column("carrier", sa.String(length=40), nullable=False),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("error_rate", sa.Float(), nullable=True),
        sa.Column("latency_ms_avg", sa.Float(), nullable=True),
        sa.Column("latency_ms_max", sa.Integer(), nullable=True),
        sa.Column("last_ok_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("active_shipments", sa.Integer(), nullable=False),
        sa.Column("last_event_at", _TS, nullable=True),
        sa.Column("window_s", sa.Float(), nullable=False),
        sa.Column("checked_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("carrier", name=op.f("pk_carrier_health")),
    )

    op.create_table(
        "carrier_poll_stat",
        sa.Column("carrier", sa.String(length=40), nullable=False),
        sa.Column("bucket_at", _TS, nullable=False),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("latency_ms_sum", sa.Integer(), nullable=False),
        sa.Column("latency_ms_max", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_ok_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("carrier", "bucket_at", name=op.f("pk_carrier_poll_stat")),
    )

    op.create_index(
        "ix_shipment_active_last_event", "shipment", ["last_event_at"], **_where(_ACTIVE)
    )
    op.create_index("ix_leg_shipment_position", "leg", ["shipment_id", "position"])
    op.create_index("ix_leg_carrier", "leg", ["carrier"])
    # Staleness is the alerts service's: the webhooks side no longer times quiet shipments.
    with op.batch_alter_table("webhook_shipment_state", recreate="never") as batch_op:
        batch_op.drop_column("stale_notified_at")


def downgrade() -> None:
    with op.batch_alter_table("webhook_shipment_state", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("stale_notified_at", _TS, nullable=True))
    op.drop_index("ix_leg_carrier", table_name="leg")
    op.drop_index("ix_leg_shipment_position", table_name="leg")
    op.drop_index("ix_shipment_active_last_event", table_name="shipment")
    op.drop_table("carrier_poll_stat")
    op.drop_table("carrier_health")
    op.drop_table("alert_learned_threshold")
    for name in (
        "ix_alert_carrier",
        "ix_alert_updated",
        "ix_alert_tenant_feed",
        "ix_alert_feed",
        "uq_alert_spell",
        "uq_alert_open_carrier",
        "uq_alert_open_shipment",
    ):
        op.drop_index(name, table_name="alert")
    op.drop_table("alert")
    op.drop_index("uq_alert_rule_tenant_key", table_name="alert_rule")
    op.drop_index("uq_alert_rule_global_key", table_name="alert_rule")
    op.drop_table("alert_rule")

"""Tables owned by the alerts service.

An ``alert`` is one quiet spell of one shipment under one rule (``kind='shipment'``), or one outage
of one carrier (``kind='carrier'``). Its ``state`` moves open → acknowledged / snoozed → resolved;
a snooze that runs out puts it back to open (the scan does that). At most one unresolved alert per
(shipment, rule) and per (carrier, rule) — partial unique indexes the scan's
``INSERT ... ON CONFLICT DO NOTHING`` leans on — and at most one alert per (shipment, rule, quiet
spell), so an operator's manual resolve is not undone by the next scan while the parcel stays quiet.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, JsonType, utcnow

SHIPMENT = "shipment"
CARRIER = "carrier"
KINDS = (SHIPMENT, CARRIER)

OPEN = "open"
ACKNOWLEDGED = "acknowledged"
SNOOZED = "snoozed"
RESOLVED = "resolved"
STATES = (OPEN, ACKNOWLEDGED, SNOOZED, RESOLVED)
UNRESOLVED = (OPEN, ACKNOWLEDGED, SNOOZED)

INFO = "info"
WARNING = "warning"
CRITICAL = "critical"
SEVERITIES = (INFO, WARNING, CRITICAL)

# Where a threshold came from (``alert.threshold_source``); learned ones read "learned p90 over N".
SOURCE_DEFAULT = "default"  # the rule set in code (services/alerts/rules.py)
SOURCE_CONFIG = "config"  # the rules file (setting alert_rules_file)
SOURCE_OPERATOR = "operator"  # a global rule stored through the API
SOURCE_TENANT = "tenant"  # a tenant's own rule stored through the API
SOURCE_CARRIER_HEALTH = "carrier health"  # carrier alerts: settings alert_carrier_*

_UNRESOLVED_SQL = "resolved_at IS NULL"


class AlertRule(Base):
    """A stored stale rule: global (``tenant_id`` NULL, an operator's) or one tenant's.

    A stored rule with the key of a code or file rule replaces it (for that tenant, or for everyone
    when global). Every condition column left NULL matches anything.
    """

    __tablename__ = "alert_rule"
    __table_args__ = (
        Index(
            "uq_alert_rule_global_key",
            "key",
            unique=True,
            postgresql_where=text("tenant_id IS NULL"),
            sqlite_where=text("tenant_id IS NULL"),
        ),
        Index(
            "uq_alert_rule_tenant_key",
            "tenant_id",
            "key",
            unique=True,
            postgresql_where=text("tenant_id IS NOT NULL"),
            sqlite_where=text("tenant_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    module: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(32))
    substatus: Mapped[str | None] = mapped_column(String(40))
    carrier: Mapped[str | None] = mapped_column(String(40))
    lane_origin: Mapped[str | None] = mapped_column(String(2))
    lane_destination: Mapped[str | None] = mapped_column(String(2))
    max_silence_s: Mapped[float] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(16), default=WARNING)
    learned: Mapped[bool] = mapped_column(Boolean, default=False)
    floor_s: Mapped[float | None] = mapped_column(Float)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    __tablename__ = "alert"
    __table_args__ = (
        Index(
            "uq_alert_open_shipment",
            "shipment_id",
            "rule_key",
            unique=True,
            postgresql_where=text(f"kind = 'shipment' AND {_UNRESOLVED_SQL}"),
            sqlite_where=text(f"kind = 'shipment' AND {_UNRESOLVED_SQL}"),
        ),
        Index(
            "uq_alert_open_carrier",
            "carrier",
            "rule_key",
            unique=True,
            postgresql_where=text(f"kind = 'carrier' AND {_UNRESOLVED_SQL}"),
            sqlite_where=text(f"kind = 'carrier' AND {_UNRESOLVED_SQL}"),
        ),
        # One alert per quiet spell: a manually resolved alert stays resolved while nothing moves.
        Index(
            "uq_alert_spell",
            "shipment_id",
            "rule_key",
            "silent_since",
            unique=True,
            postgresql_where=text("kind = 'shipment'"),
            sqlite_where=text("kind = 'shipment'"),
        ),
        Index("ix_alert_feed", "state", "opened_at", "id"),
        Index("ix_alert_tenant_feed", "tenant_id", "state", "opened_at", "id"),
        Index("ix_alert_updated", "updated_at", "id"),
        Index(
            "ix_alert_carrier",
            "carrier",
            "resolved_at",
            postgresql_where=text("kind = 'carrier'"),
            sqlite_where=text("kind = 'carrier'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # NULL for carrier alerts: carrier-wide, shown to every tenant's operators (no tenant data in
    # them), changed only by the scan.
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    rule_key: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=OPEN)
    shipment_id: Mapped[uuid.UUID | None] = mapped_column()
    tracking_number: Mapped[str | None] = mapped_column(String(64))  # the shipment's, registered
    carrier: Mapped[str | None] = mapped_column(String(40))
    lane: Mapped[str | None] = mapped_column(String(8))  # "CN-US"; "??" for an unknown side
    module: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(32))  # the shipment's, when it opened
    substatus: Mapped[str | None] = mapped_column(String(40))
    threshold_s: Mapped[float] = mapped_column(Float)
    threshold_source: Mapped[str] = mapped_column(String(64))
    last_event_at: Mapped[datetime | None] = mapped_column()
    # Start of the quiet spell: the last event, or the registration when there was none.
    silent_since: Mapped[datetime | None] = mapped_column()
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    snoozed_until: Mapped[datetime | None] = mapped_column()
    snoozed_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LearnedThreshold(Base):
    """Observed dwell of one (lane, carrier, status, substatus): its p90 over ``samples`` dwells.

    Empty strings stand for "unknown" in the key columns so the key can be a primary key.
    """

    __tablename__ = "alert_learned_threshold"

    lane_origin: Mapped[str] = mapped_column(String(2), primary_key=True)
    lane_destination: Mapped[str] = mapped_column(String(2), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    substatus: Mapped[str] = mapped_column(String(40), primary_key=True)
    p90_s: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class CarrierHealth(Base):
    """Each carrier as the last scan saw it: poll outcomes over the window, and its parcels."""

    __tablename__ = "carrier_health"

    carrier: Mapped[str] = mapped_column(String(40), primary_key=True)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    error_rate: Mapped[float | None] = mapped_column(Float)
    latency_ms_avg: Mapped[float | None] = mapped_column(Float)
    latency_ms_max: Mapped[int | None] = mapped_column(Integer)
    last_ok_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    active_shipments: Mapped[int] = mapped_column(Integer, default=0)
    last_event_at: Mapped[datetime | None] = mapped_column()  # newest among its active parcels
    window_s: Mapped[float] = mapped_column(Float)
    checked_at: Mapped[datetime] = mapped_column()

"""Alerts: the feed, the lifecycle, counts, carrier health and stored rules.

Contract (for the API and the console):

- ``tenant_id``: a tenant's UUID scopes every read to that tenant's shipment alerts and the
  carrier-wide alerts (``tenant_id`` NULL: about a carrier's API, no tenant's data in them);
  another tenant's alert is ``NotFound``. ``None`` is the platform view: everything.
- A tenant cannot change a carrier-wide alert (``Forbidden``): it is every tenant's at once, and
  the scan resolves it when the carrier recovers.
- Functions take the session first and only flush; whoever opened the session commits.
- State changes (``acknowledge``, ``snooze``, ``resolve``) write an ``AlertChange`` to the outbox
  for ``topic`` (pass ``settings.topic(TOPIC_ALERTS)``) in the same transaction; they raise
  ``Conflict`` on a resolved alert, ``InvalidInput`` on a snooze that ends in the past.
- ``list_alerts`` pages newest first by (opened_at, id); ``next_cursor`` is opaque, None at the end;
  a cursor that does not decode is ``InvalidInput``.
- ``changes_since`` walks (updated_at, id) ascending, for a live stream.
- ``effective_rules`` / ``put_rules``: ``base`` is ``rules.base_rules(settings.alert_rules_file)``;
  ``put_rules`` replaces the whole stored set of the scope (tenant, or global when None).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from services.alerts.models import (
    ACKNOWLEDGED,
    CARRIER,
    OPEN,
    RESOLVED,
    SNOOZED,
    STATES,
    UNRESOLVED,
    Alert,
    AlertRule,
    CarrierHealth,
)
from services.alerts.rules import Rule, RuleSpec, layered, spec_of
from shared.bus import OutRecord
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.outbox import add_to_outbox
from shared.schema import AlertChange, encode

MAX_PAGE = 500
CARRIER_WIDE_READ_ONLY = (
    "carrier-wide alerts are managed by the platform; "
    "they resolve by themselves when the carrier recovers"
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AlertFilter:
    states: Sequence[str] = UNRESOLVED
    kind: str | None = None
    rule: str | None = None
    carrier: str | None = None
    lane: str | None = None  # "CN-US"
    module: str | None = None
    severity: str | None = None
    shipment_id: uuid.UUID | None = None
    min_age_s: float | None = None  # quiet (or, for a carrier, open) at least this long


@dataclass
class AlertPage:
    items: list[Alert]
    next_cursor: str | None


@dataclass
class Counts:
    total: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    by_rule: dict[str, int] = field(default_factory=dict)
    by_carrier: dict[str, int] = field(default_factory=dict)
    by_lane: dict[str, int] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)
    carrier_wide: int = 0


# --- reading ----------------------------------------------------------------------------------


def _scoped(stmt: Select[Any], tenant_id: uuid.UUID | None) -> Select[Any]:
    if tenant_id is None:
        return stmt
    return stmt.where(
        or_(Alert.tenant_id == tenant_id, and_(Alert.tenant_id.is_(None), Alert.kind == CARRIER))
    )


def carrier_wide(alert: Alert) -> bool:
    """An alert about a carrier's API, shared by every tenant."""
    return alert.kind == CARRIER and alert.tenant_id is None


def _filtered(stmt: Select[Any], f: AlertFilter, now: datetime) -> Select[Any]:
    bad = [s for s in f.states if s not in STATES]
    if bad:
        raise InvalidInput(f"unknown state {bad[0]!r}; one of {', '.join(STATES)}")
    if f.states:
        stmt = stmt.where(Alert.state.in_(list(f.states)))
    for column, value in (
        (Alert.kind, f.kind),
        (Alert.rule_key, f.rule),
        (Alert.carrier, f.carrier),
        (Alert.lane, f.lane),
        (Alert.module, f.module),
        (Alert.severity, f.severity),
        (Alert.shipment_id, f.shipment_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if f.min_age_s is not None:
        since = func.coalesce(Alert.silent_since, Alert.opened_at)
        stmt = stmt.where(since <= now - timedelta(seconds=f.min_age_s))
    return stmt


def encode_cursor(alert: Alert) -> str:
    raw = f"{alert.opened_at.isoformat()}|{alert.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, ident = raw.split("|")
        when = datetime.fromisoformat(at)
        if when.utcoffset() is None:
            raise ValueError("naive")
        return when, uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor is not one this API returned") from exc


async def list_alerts(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    filters: AlertFilter,
    *,
    now: datetime,
    cursor: str | None = None,
    limit: int = 50,
) -> AlertPage:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    stmt = _filtered(_scoped(select(Alert), tenant_id), filters, now)
    if cursor:
        at, ident = decode_cursor(cursor)
        stmt = stmt.where(or_(Alert.opened_at < at, and_(Alert.opened_at == at, Alert.id < ident)))
    stmt = stmt.order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    more = len(rows) > limit
    items = rows[:limit]
    return AlertPage(items, encode_cursor(items[-1]) if more else None)


async def get_alert(
    session: AsyncSession, alert_id: uuid.UUID, *, tenant_id: uuid.UUID | None
) -> Alert:
    stmt = _scoped(select(Alert).where(Alert.id == alert_id), tenant_id)
    alert: Alert | None = (await session.scalars(stmt)).first()
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    return alert


async def counts(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    *,
    states: Sequence[str] = UNRESOLVED,
) -> Counts:
    """How many alerts there are, by state, rule, carrier, lane and severity."""
    out = Counts()
    groups = (
        ("by_state", Alert.state),
        ("by_rule", Alert.rule_key),
        ("by_carrier", Alert.carrier),
        ("by_lane", Alert.lane),
        ("by_severity", Alert.severity),
    )
    for name, column in groups:
        stmt = _filtered(
            _scoped(select(column, func.count()), tenant_id), AlertFilter(states=states), EPOCH
        ).group_by(column)
        target: dict[str, int] = getattr(out, name)
        for value, n in (await session.execute(stmt)).all():
            if value is not None:
                target[str(value)] = int(n)
    out.total = sum(out.by_state.values())
    wide = _filtered(
        select(func.count()).where(Alert.tenant_id.is_(None), Alert.kind == CARRIER),
        AlertFilter(states=states),
        EPOCH,
    )
    out.carrier_wide = int(await session.scalar(wide) or 0)
    return out


async def changes_since(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    *,
    limit: int = 200,
) -> list[Alert]:
    """Alerts changed after ``after`` (an (updated_at, id) pair), oldest change first."""
    stmt = _scoped(select(Alert), tenant_id)
    if after is not None:
        at, ident = after
        stmt = stmt.where(
            or_(Alert.updated_at > at, and_(Alert.updated_at == at, Alert.id > ident))
        )
    stmt = stmt.order_by(Alert.updated_at, Alert.id).limit(limit)
    return list((await session.scalars(stmt)).all())


async def carrier_health(session: AsyncSession) -> list[CarrierHealth]:
    """Every carrier as the last scan saw it (the scan refreshes the table)."""
    return list(
        (await session.scalars(select(CarrierHealth).order_by(CarrierHealth.carrier))).all()
    )


# --- the lifecycle ----------------------------------------------------------------------------


def change_record(
    alert: Alert, change: str, now: datetime, by: str | None = None, reason: str | None = None
) -> OutRecord:
    message = AlertChange(
        change=change,
        alert_id=alert.id,
        alert_kind=alert.kind,
        tenant_id=alert.tenant_id,
        rule_key=alert.rule_key,
        severity=alert.severity,
        state=alert.state,
        shipment_id=alert.shipment_id,
        carrier=alert.carrier,
        lane=alert.lane,
        module=alert.module,
        status=alert.status,
        substatus=alert.substatus,
        threshold_s=alert.threshold_s,
        threshold_source=alert.threshold_source,
        last_event_at=alert.last_event_at,
        silent_since=alert.silent_since,
        opened_at=alert.opened_at,
        changed_at=now,
        by=by,
        reason=reason,
    )
    return OutRecord(record_key(alert), encode(message))


def record_key(alert: Alert) -> str:
    return f"carrier:{alert.carrier}" if alert.kind == CARRIER else str(alert.shipment_id)


async def _unresolved(
    session: AsyncSession, alert_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> Alert:
    alert = await get_alert(session, alert_id, tenant_id=tenant_id)
    if tenant_id is not None and carrier_wide(alert):
        raise Forbidden(CARRIER_WIDE_READ_ONLY)
    if alert.state == RESOLVED:
        raise Conflict(f"alert {alert_id} is already resolved")
    return alert


async def acknowledge(
    session: AsyncSession,
    alert_id: uuid.UUID,
    *,
    tenant_id: uuid.UUID | None,
    by: str,
    now: datetime,
    topic: str,
) -> Alert:
    alert = await _unresolved(session, alert_id, tenant_id)
    if alert.state == ACKNOWLEDGED:
        return alert
    alert.state, alert.acknowledged_at, alert.acknowledged_by = ACKNOWLEDGED, now, by[:200]
    alert.snoozed_until = None
    alert.updated_at = now
    await session.flush()
    add_to_outbox(session, topic, [change_record(alert, "acknowledged", now, by)])
    return alert


async def snooze(
    session: AsyncSession,
    alert_id: uuid.UUID,
    *,
    tenant_id: uuid.UUID | None,
    until: datetime,
    by: str,
    now: datetime,
    topic: str,
) -> Alert:
    if until.utcoffset() is None:
        raise InvalidInput("until must carry a UTC offset")
    if until <= now:
        raise InvalidInput("until must be in the future")
    alert = await _unresolved(session, alert_id, tenant_id)
    alert.state, alert.snoozed_until, alert.snoozed_by = SNOOZED, until, by[:200]
    alert.updated_at = now
    await session.flush()
    add_to_outbox(session, topic, [change_record(alert, "snoozed", now, by)])
    return alert


async def resolve(
    session: AsyncSession,
    alert_id: uuid.UUID,
    *,
    tenant_id: uuid.UUID | None,
    by: str,
    now: datetime,
    topic: str,
    reason: str = "resolved by hand",
) -> Alert:
    alert = await _unresolved(session, alert_id, tenant_id)
    alert.state, alert.resolved_at, alert.resolved_by = RESOLVED, now, by[:200]
    alert.resolved_reason = reason[:1000]
    alert.updated_at = now
    await session.flush()
    add_to_outbox(session, topic, [change_record(alert, "resolved", now, by, reason)])
    return alert


# --- rules ------------------------------------------------------------------------------------


async def stored_rules(session: AsyncSession, tenant_id: uuid.UUID | None) -> list[RuleSpec]:
    scope = AlertRule.tenant_id.is_(None) if tenant_id is None else AlertRule.tenant_id == tenant_id
    rows = (await session.scalars(select(AlertRule).where(scope).order_by(AlertRule.key))).all()
    return [spec_of(r) for r in rows]


async def all_tenant_rules(session: AsyncSession) -> dict[uuid.UUID, list[RuleSpec]]:
    rows = (await session.scalars(select(AlertRule).where(AlertRule.tenant_id.is_not(None)))).all()
    out: dict[uuid.UUID, list[RuleSpec]] = {}
    for row in rows:
        assert row.tenant_id is not None
        out.setdefault(row.tenant_id, []).append(spec_of(row))
    return out


async def effective_rules(
    session: AsyncSession, base: Sequence[Rule], tenant_id: uuid.UUID | None
) -> list[Rule]:
    """The rules that apply to ``tenant_id`` (the global set for None), most specific first."""
    tenant = await stored_rules(session, tenant_id) if tenant_id is not None else []
    return layered(base, await stored_rules(session, None), tenant, tenant_id)


async def put_rules(
    session: AsyncSession,
    base: Sequence[Rule],
    tenant_id: uuid.UUID | None,
    specs: Sequence[RuleSpec],
    *,
    now: datetime,
) -> list[Rule]:
    """Replace the scope's stored rules with ``specs``; returns the effective rules afterwards."""
    scope = AlertRule.tenant_id.is_(None) if tenant_id is None else AlertRule.tenant_id == tenant_id
    await session.execute(delete(AlertRule).where(scope))
    session.add_all(
        AlertRule(
            tenant_id=tenant_id,
            created_at=now,
            updated_at=now,
            **s.model_dump(mode="json"),
        )
        for s in specs
    )
    await session.flush()
    return await effective_rules(session, base, tenant_id)


__all__ = [
    "OPEN",
    "AlertFilter",
    "AlertPage",
    "Counts",
    "acknowledge",
    "all_tenant_rules",
    "carrier_health",
    "carrier_wide",
    "change_record",
    "changes_since",
    "counts",
    "decode_cursor",
    "effective_rules",
    "encode_cursor",
    "get_alert",
    "list_alerts",
    "put_rules",
    "resolve",
    "snooze",
    "stored_rules",
]

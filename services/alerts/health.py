"""Carrier health: one carrier alert instead of hundreds of parcel alerts.

Two signals, refreshed into ``carrier_health`` on every scan:

- ``carrier_errors``: over the last ``window_s`` the carrier failed at least ``error_rate`` of at
  least ``min_polls`` polls (timeouts, 5xx, 429, unreadable answers: ``carrier_poll_stat``, written
  by the pollers). It resolves once the carrier answered after the alert opened and the window's
  error rate is back under the limit — a poller that backs off cannot resolve it by polling less.
- ``carrier_silent``: the carrier has at least ``min_active`` unfinished parcels (those whose last
  leg is the carrier's) and none of them had an event for ``silent_s``. It resolves on any event.

Parcels are counted only up to ``min_active`` (``carrier_health.active_shipments`` is "at least"),
and ``last_event_at`` is some event within ``silent_s`` when there is one, the newest otherwise:
both are bounded probes, so a healthy carrier costs a few index lookups however many parcels it has.

Reads the carriers' ``carrier_poll_stat`` and the timeline's ``shipment`` and ``leg`` through SQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.models import (
    CARRIER,
    CRITICAL,
    OPEN,
    RESOLVED,
    SOURCE_CARRIER_HEALTH,
    Alert,
    CarrierHealth,
)
from services.alerts.rules import CARRIER_ERRORS, CARRIER_SILENT
from shared.db import UtcDateTime
from shared.taxonomy import TERMINAL_STATUSES

_TERMINAL = ", ".join(f"'{s.value}'" for s in sorted(TERMINAL_STATUSES))


@dataclass(frozen=True)
class CarrierLimits:
    window_s: float = 900.0
    min_polls: int = 10
    error_rate: float = 0.5
    silent_s: float = 86400.0
    min_active: int = 20
    recovery_s: float = 900.0  # after a carrier alert resolves, its parcels' grace to catch up


@dataclass
class Facts:
    carrier: str
    polls: int = 0
    errors: int = 0
    latency_ms_sum: int = 0
    latency_ms_max: int | None = None
    last_ok_at: datetime | None = None
    last_error: str | None = None
    active: int = 0
    last_event_at: datetime | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.polls if self.polls else None


def failing(f: Facts, limits: CarrierLimits, now: datetime) -> dict[str, str]:
    """The carrier-level rules ``f`` breaks, each with a line saying why."""
    out: dict[str, str] = {}
    rate = f.error_rate
    if rate is not None and f.polls >= limits.min_polls and rate >= limits.error_rate:
        out[CARRIER_ERRORS] = f"{f.errors} of {f.polls} polls failed in {limits.window_s:g} s"
    quiet_since = now - timedelta(seconds=limits.silent_s)
    if f.active >= limits.min_active and (f.last_event_at is None or f.last_event_at < quiet_since):
        out[CARRIER_SILENT] = (
            f"no event for any of {f.active} active parcels for {limits.silent_s:g} s"
        )
    return out


def recovered(rule_key: str, f: Facts | None, alert: Alert, limits: CarrierLimits) -> bool:
    if f is None:  # neither polled nor carrying parcels any more
        return True
    if rule_key == CARRIER_ERRORS:
        rate = f.error_rate
        answered = f.last_ok_at is not None and f.last_ok_at > alert.opened_at
        return answered and rate is not None and rate < limits.error_rate
    if rule_key == CARRIER_SILENT:
        if f.active < limits.min_active:
            return True
        before = alert.last_event_at
        return f.last_event_at is not None and (before is None or f.last_event_at > before)
    return False


# --- reading the facts --------------------------------------------------------------------------


async def _poll_facts(session: AsyncSession, since: datetime) -> dict[str, Facts]:
    stmt = text(
        "SELECT carrier, SUM(polls), SUM(errors), SUM(latency_ms_sum), MAX(latency_ms_max), "
        "MAX(last_ok_at) FROM carrier_poll_stat WHERE bucket_at >= :since GROUP BY carrier"
    ).bindparams(bindparam("since", type_=UtcDateTime()))
    facts: dict[str, Facts] = {}
    for carrier, polls, errors, lat_sum, lat_max, last_ok in await session.execute(
        stmt, {"since": since}
    ):
        facts[carrier] = Facts(
            carrier, int(polls), int(errors), int(lat_sum), lat_max, _aware(last_ok)
        )
    errors_stmt = text(
        "SELECT carrier, last_error FROM carrier_poll_stat WHERE bucket_at >= :since "
        "AND last_error IS NOT NULL ORDER BY bucket_at"
    ).bindparams(bindparam("since", type_=UtcDateTime()))
    for carrier, last_error in await session.execute(errors_stmt, {"since": since}):
        if carrier in facts:
            facts[carrier].last_error = last_error
    return facts


def _aware(value: Any) -> datetime | None:
    """SQLite hands aggregates back as text; PostgreSQL as aware datetimes."""
    if value is None or isinstance(value, datetime):
        return _utc(value)
    return _utc(datetime.fromisoformat(str(value)))


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_CARRIERS_SQL = """
WITH RECURSIVE c(carrier) AS (
  SELECT MIN(carrier) FROM leg
  UNION ALL
  SELECT (SELECT MIN(l.carrier) FROM leg l WHERE l.carrier > c.carrier) FROM c
  WHERE c.carrier IS NOT NULL
)
SELECT carrier FROM c WHERE carrier IS NOT NULL"""

# The carrier's unfinished parcels: those whose last leg is the carrier's. Probed with LIMIT, so a
# carrier that speaks costs a few index lookups; only a silent one is walked in full.
_PARCELS = (
    "FROM leg l JOIN shipment s ON s.id = l.shipment_id WHERE l.carrier = :carrier"
    f" AND s.status NOT IN ({_TERMINAL}) AND s.merged_into_id IS NULL AND s.tenant_id IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM leg l2 WHERE l2.shipment_id = l.shipment_id"
    " AND l2.position > l.position)"
)


async def _parcel_facts(
    session: AsyncSession, facts: dict[str, Facts], limits: CarrierLimits, now: datetime
) -> None:
    since = now - timedelta(seconds=limits.silent_s)
    carriers = set(facts) | set((await session.scalars(text(_CARRIERS_SQL))).all())
    active = text(f"SELECT COUNT(*) FROM (SELECT 1 {_PARCELS} LIMIT :n) a")
    spoke = text(
        f"SELECT s.last_event_at {_PARCELS} AND s.last_event_at >= :since LIMIT 1"
    ).bindparams(bindparam("since", type_=UtcDateTime()))
    newest = text(f"SELECT MAX(s.last_event_at) {_PARCELS}")
    for carrier in sorted(carriers):
        f = facts.setdefault(carrier, Facts(carrier))
        n = await session.scalar(active, {"carrier": carrier, "n": limits.min_active})
        f.active = int(n or 0)
        if not f.active:
            continue
        recent = await session.scalar(spoke, {"carrier": carrier, "since": since})
        if recent is None and f.active >= limits.min_active:
            recent = await session.scalar(newest, {"carrier": carrier})
        f.last_event_at = _aware(recent)


async def collect(
    session: AsyncSession, limits: CarrierLimits, now: datetime, pg: bool
) -> dict[str, Facts]:
    facts = await _poll_facts(session, now - timedelta(seconds=limits.window_s))
    await _parcel_facts(session, facts, limits, now)
    return facts


# --- acting on them -----------------------------------------------------------------------------


async def _store(
    session: AsyncSession, facts: dict[str, Facts], limits: CarrierLimits, now: datetime
) -> None:
    await session.execute(delete(CarrierHealth))
    rows = [
        {
            "carrier": f.carrier,
            "polls": f.polls,
            "errors": f.errors,
            "error_rate": f.error_rate,
            "latency_ms_avg": f.latency_ms_sum / f.polls if f.polls else None,
            "latency_ms_max": f.latency_ms_max,
            "last_ok_at": f.last_ok_at,
            "last_error": f.last_error,
            "active_shipments": f.active,
            "last_event_at": f.last_event_at,
            "window_s": limits.window_s,
            "checked_at": now,
        }
        for f in facts.values()
    ]
    if rows:
        await session.execute(insert(CarrierHealth), rows)


def _alert_row(
    f: Facts, rule_key: str, why: str, limits: CarrierLimits, now: datetime
) -> dict[str, Any]:
    # For an error-rate alert the threshold is the window the rate was measured over.
    threshold = limits.silent_s if rule_key == CARRIER_SILENT else limits.window_s
    return {
        "id": uuid.uuid4(),
        "tenant_id": None,
        "kind": CARRIER,
        "rule_key": rule_key,
        "severity": CRITICAL,
        "state": OPEN,
        "carrier": f.carrier,
        "threshold_s": threshold,
        "threshold_source": SOURCE_CARRIER_HEALTH,
        "last_event_at": f.last_event_at,
        "silent_since": f.last_event_at if rule_key == CARRIER_SILENT else None,
        "detail": {
            "why": why,
            "polls": f.polls,
            "errors": f.errors,
            "error_rate": f.error_rate,
            "error_rate_limit": limits.error_rate,
            "active_shipments": f.active,
            "last_error": f.last_error,
        },
        "opened_at": now,
        "updated_at": now,
    }


async def evaluate(
    session: AsyncSession, limits: CarrierLimits, now: datetime, pg: bool
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Refresh ``carrier_health``; open and resolve carrier alerts. Returns (opened, resolved)."""
    facts = await collect(session, limits, now, pg)
    await _store(session, facts, limits, now)
    open_alerts = (
        await session.scalars(
            select(Alert).where(Alert.kind == CARRIER, Alert.resolved_at.is_(None))
        )
    ).all()
    resolved = [
        a.id
        for a in open_alerts
        if a.carrier is not None and recovered(a.rule_key, facts.get(a.carrier), a, limits)
    ]
    if resolved:
        await session.execute(
            update(Alert)
            .where(Alert.id.in_(resolved))
            .values(
                state=RESOLVED,
                resolved_at=now,
                updated_at=now,
                resolved_reason="carrier answers again",
            )
        )
    return await _open(session, facts, limits, now, pg), resolved


async def _open(
    session: AsyncSession, facts: dict[str, Facts], limits: CarrierLimits, now: datetime, pg: bool
) -> list[uuid.UUID]:
    dialect = postgresql if pg else sqlite
    opened: list[uuid.UUID] = []
    for f in sorted(facts.values(), key=lambda f: f.carrier):
        for rule_key, why in failing(f, limits, now).items():
            stmt = (
                dialect.insert(Alert)
                .values(**_alert_row(f, rule_key, why, limits, now))
                .on_conflict_do_nothing()
                .returning(Alert.id)
            )
            opened.extend((await session.execute(stmt)).scalars().all())
    return opened

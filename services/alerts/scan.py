"""The stale scan: a few set-based statements, whatever the number of shipments.

One pass, in one transaction:

1. snoozes that ran out re-open;
2. shipment alerts whose shipment moved on (a newer event, delivered, returned, merged) resolve;
3. carrier health (``health.py``): carrier alerts open or resolve;
4. ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` opens one alert per (shipment, rule) for every
   unfinished shipment quiet longer than its winning rule allows, except where the shipment's
   current carrier has an open carrier alert (one carrier alert, not 500 parcel alerts) or had one
   resolved less than ``alert_carrier_recovery_s`` ago (its pollers are still catching up).

Every change is written to the outbox for ``alerts.v1``. The shipment side reads the timeline's
``shipment`` and ``leg`` tables through SQL only (bare table names, no import of that service): it
walks ``ix_shipment_active_last_event`` from the oldest silence up to the loosest rule's limit.
A shipment's current carrier and module are those of its last leg (the leg that should be
speaking); a leg without its own module yet takes the one its substatus implies.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Uuid, bindparam, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause

from services.alerts import health, repository
from services.alerts.models import Alert
from services.alerts.rules import Rule, layered
from shared.db import UtcDateTime
from shared.outbox import OutboxRecord
from shared.taxonomy import SUBSTATUS_MODULE, TERMINAL_STATUSES

log = logging.getLogger("throughline.alerts")

_TERMINAL = ", ".join(f"'{s.value}'" for s in sorted(TERMINAL_STATUSES))
_MODULE_OF_SUBSTATUS = " ".join(
    f"WHEN '{sub.value}' THEN '{mod.value}'" for sub, mod in SUBSTATUS_MODULE.items()
)
_RULE_COLUMNS = (
    ("tenant_id", "uuid"),
    ("rule_key", "varchar"),
    ("r_status", "varchar"),
    ("r_substatus", "varchar"),
    ("r_module", "varchar"),
    ("r_carrier", "varchar"),
    ("r_origin", "varchar"),
    ("r_destination", "varchar"),
    ("max_silence_s", "double precision"),
    ("severity", "varchar"),
    ("learned", "boolean"),
    ("floor_s", "double precision"),
    ("source", "varchar"),
    ("rnk", "integer"),
    ("r_cut", "timestamptz"),
)


@dataclass(frozen=True)
class ScanConfig:
    base: Sequence[Rule]
    learned_min_samples: int = 50
    carrier: health.CarrierLimits = field(default_factory=health.CarrierLimits)


@dataclass
class ScanResult:
    opened: int = 0
    resolved: int = 0
    reopened: int = 0
    carrier_opened: int = 0
    carrier_resolved: int = 0


async def scan(session: AsyncSession, config: ScanConfig, now: datetime, topic: str) -> ScanResult:
    """One scan; flushes only (the caller commits)."""
    result = ScanResult()
    pg = session.bind.dialect.name == "postgresql"
    if pg:  # JIT costs more than these index-driven statements gain; sorts stay in memory
        await session.execute(text("SET LOCAL jit = off"))
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
    result.reopened = await _publish(
        session, await _reopen_snoozed(session, now), "reopened", now, topic
    )
    resolved = await _resolve_resumed(session, now, pg)
    result.resolved = await _publish(session, resolved, "resolved", now, topic, "events resumed")
    opened_c, resolved_c = await health.evaluate(session, config.carrier, now, pg)
    result.carrier_opened = await _publish(session, opened_c, "opened", now, topic)
    result.carrier_resolved = await _publish(
        session, resolved_c, "resolved", now, topic, "carrier answers again"
    )
    rules = await _rules(session, config.base)
    if rules:
        recovered_since = now - timedelta(seconds=config.carrier.recovery_s)
        opened = await _open_stale(
            session, rules, config.learned_min_samples, now, recovered_since, pg
        )
        result.opened = await _publish(session, opened, "opened", now, topic)
    return result


async def _rules(session: AsyncSession, base: Sequence[Rule]) -> list[Rule]:
    """Every enabled effective rule: the global set, and each overriding tenant's full set."""
    stored_global = await repository.stored_rules(session, None)
    rules = [r for r in layered(base, stored_global) if r.spec.enabled]
    for tenant_id, specs in (await repository.all_tenant_rules(session)).items():
        own = layered(base, stored_global, specs, tenant_id)
        rules.extend(Rule(r.spec, r.source, tenant_id) for r in own if r.spec.enabled)
    return rules


async def _publish(
    session: AsyncSession,
    ids: Sequence[uuid.UUID],
    change: str,
    now: datetime,
    topic: str,
    reason: str | None = None,
) -> int:
    if not ids:
        return 0
    for start in range(0, len(ids), 5000):
        chunk = list(ids[start : start + 5000])
        alerts = (await session.scalars(select(Alert).where(Alert.id.in_(chunk)))).all()
        records = [repository.change_record(a, change, now, None, reason) for a in alerts]
        # A bulk INSERT, not ORM objects: a first scan may open tens of thousands at once.
        rows = [
            {"topic": topic, "key": r.key, "value": r.value, "created_at": now} for r in records
        ]
        await session.execute(insert(OutboxRecord), rows)
        for alert in alerts:  # not needed again in this transaction: keep the session small
            session.expunge(alert)
    return len(ids)


def _ids(rows: Sequence[Any]) -> list[uuid.UUID]:
    return [r[0] if isinstance(r[0], uuid.UUID) else uuid.UUID(str(r[0])) for r in rows]


def _typed(sql: str) -> TextClause:
    return text(sql).bindparams(bindparam("now", type_=UtcDateTime()))


async def _reopen_snoozed(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    stmt = _typed(
        "UPDATE alert SET state = 'open', snoozed_until = NULL, updated_at = :now "
        "WHERE state = 'snoozed' AND snoozed_until <= :now RETURNING id"
    ).columns(id=Uuid())
    return _ids((await session.execute(stmt, {"now": now})).all())


async def _resolve_resumed(session: AsyncSession, now: datetime, pg: bool) -> list[uuid.UUID]:
    """Resolve shipment alerts whose shipment spoke again, finished, or was merged away."""
    stmt = _typed(
        "UPDATE alert SET state = 'resolved', resolved_at = :now, updated_at = :now, "
        "resolved_reason = 'events resumed' "
        "WHERE kind = 'shipment' AND resolved_at IS NULL AND EXISTS ("
        " SELECT 1 FROM shipment s WHERE s.id = alert.shipment_id AND ("
        f"  s.status IN ({_TERMINAL}) OR s.merged_into_id IS NOT NULL"
        "   OR COALESCE(s.last_event_at, s.created_at) > alert.silent_since)) "
        "RETURNING id"
    ).columns(id=Uuid())
    return _ids((await session.execute(stmt, {"now": now})).all())


# --- opening shipment alerts --------------------------------------------------------------------


def _lower_bound_s(rule: Rule) -> float:
    """No shipment quieter than this can be stale under ``rule`` (learned limits have a floor)."""
    s = rule.spec
    return min(s.max_silence_s, s.floor_s or 0.0) if s.learned else s.max_silence_s


def _rules_cte(rules: Sequence[Rule], pg: bool, now: datetime) -> tuple[str, dict[str, Any]]:
    """``rules(...) AS (VALUES ...)`` with one bound row per rule (typed for PostgreSQL)."""
    params: dict[str, Any] = {}
    rows = []
    for i, rule in enumerate(rules):
        s = rule.spec
        values = (
            rule.tenant_id.hex if rule.tenant_id and not pg else rule.tenant_id,
            s.key,
            s.status.value if s.status else None,
            s.substatus.value if s.substatus else None,
            s.module.value if s.module else None,
            s.carrier,
            s.lane_origin,
            s.lane_destination,
            float(s.max_silence_s),
            s.severity,
            1 if s.learned else 0,
            float(s.floor_s) if s.floor_s is not None else None,
            rule.source,
            rule.rank,
            now - timedelta(seconds=_lower_bound_s(rule)),
        )
        cells = []
        for (name, sqltype), value in zip(_RULE_COLUMNS, values, strict=True):
            params[f"{name}_{i}"] = value
            if pg:
                value_sql = f"CAST(:{name}_{i} AS {sqltype})"
                if name == "learned":
                    value_sql = f"(CAST(:{name}_{i} AS integer) = 1)"
                cells.append(value_sql)
            else:
                cells.append(f":{name}_{i}")
        rows.append(f"({', '.join(cells)})")
    names = ", ".join(name for name, _ in _RULE_COLUMNS)
    return f"rules({names}) AS (VALUES {', '.join(rows)})", params


def _min_silence_s(rules: Sequence[Rule]) -> float:
    """The loosest cut: nobody quieter than this can be stale under any rule."""
    return min(_lower_bound_s(r) for r in rules)


def _current_leg(pg: bool) -> tuple[str, str, str]:
    """(join clause, carrier expression, leg module expression) for shipment ``p``'s last leg."""
    if pg:
        join = (
            "LEFT JOIN LATERAL (SELECT l.carrier, l.module FROM leg l WHERE l.shipment_id = p.id "
            "ORDER BY l.position DESC LIMIT 1) cl ON true"
        )
        return join, "COALESCE(cl.carrier, p.carrier)", "cl.module"
    last = "FROM leg l WHERE l.shipment_id = p.id ORDER BY l.position DESC LIMIT 1"
    return (
        "",
        f"COALESCE((SELECT l.carrier {last}), p.carrier)",
        f"(SELECT l.module {last})",
    )


def _open_sql(rules_cte: str, pg: bool) -> str:
    join, carrier, leg_module = _current_leg(pg)
    module = f"COALESCE({leg_module}, CASE p.substatus {_MODULE_OF_SUBSTATUS} END)"
    greatest = "GREATEST" if pg else "MAX"
    new_id = "gen_random_uuid()" if pg else "lower(hex(randomblob(16)))"
    age = (
        "EXTRACT(EPOCH FROM (:now - w.silent_since))"
        if pg
        else "((julianday(:now) - julianday(w.silent_since)) * 86400.0)"
    )
    rest = (
        "(r.tenant_id = c.tenant_id OR (r.tenant_id IS NULL AND o.tenant_id IS NULL))"
        " AND (r.r_status IS NULL OR r.r_status = c.status)"
        " AND (r.r_module IS NULL OR r.r_module = c.module)"
        " AND (r.r_carrier IS NULL OR r.r_carrier = c.carrier)"
        " AND (r.r_origin IS NULL OR r.r_origin = c.origin)"
        " AND (r.r_destination IS NULL OR r.r_destination = c.destination)"
    )
    src = "FROM cand c LEFT JOIN overridden o ON o.tenant_id = c.tenant_id JOIN rules r ON"
    learned = (
        "LEFT JOIN alert_learned_threshold {a} ON {a}.lane_origin = COALESCE(p.origin, '')"
        " AND {a}.lane_destination = COALESCE(p.destination, '') AND {a}.carrier = {carrier}"
        " AND {a}.status = p.status AND {a}.substatus = COALESCE(p.substatus, '')"
        " AND {a}.samples >= :min_samples"
    )
    return f"""
WITH {rules_cte},
overridden AS (SELECT DISTINCT tenant_id FROM rules WHERE tenant_id IS NOT NULL),
held_back AS (
  SELECT DISTINCT carrier FROM alert
  WHERE kind = 'carrier' AND carrier IS NOT NULL
    AND (resolved_at IS NULL OR resolved_at > :recovered_since)
),
pre AS (
  SELECT s.id, s.tenant_id, s.status, s.substatus, s.origin_country AS origin,
         s.destination_country AS destination, s.last_event_at, s.carrier,
         COALESCE(s.last_event_at, s.created_at) AS silent_since
  FROM shipment s
  WHERE s.status NOT IN ({_TERMINAL}) AND s.merged_into_id IS NULL AND s.tenant_id IS NOT NULL
    AND (s.last_event_at < :cutoff OR (s.last_event_at IS NULL AND s.created_at < :cutoff))
    AND NOT EXISTS (SELECT 1 FROM alert a WHERE a.kind = 'shipment' AND a.resolved_at IS NULL
                    AND a.shipment_id = s.id)
    AND EXISTS (
      SELECT 1 FROM rules r LEFT JOIN overridden o ON o.tenant_id = s.tenant_id
      WHERE (r.tenant_id = s.tenant_id OR (r.tenant_id IS NULL AND o.tenant_id IS NULL))
        AND (r.r_status IS NULL OR r.r_status = s.status)
        AND (r.r_substatus IS NULL OR r.r_substatus = s.substatus)
        AND (r.r_origin IS NULL OR r.r_origin = s.origin_country)
        AND (r.r_destination IS NULL OR r.r_destination = s.destination_country)
        AND COALESCE(s.last_event_at, s.created_at) < r.r_cut)
),
cand AS (
  SELECT p.id, p.tenant_id, p.status, p.substatus, p.origin, p.destination, p.last_event_at,
         p.silent_since, {carrier} AS carrier, {module} AS module
  FROM pre p {join}
),
matched AS (
  SELECT c.*, r.rule_key, r.max_silence_s, r.severity, r.learned, r.floor_s, r.source, r.rnk
  {src} r.r_substatus = c.substatus AND {rest}
  UNION ALL
  SELECT c.*, r.rule_key, r.max_silence_s, r.severity, r.learned, r.floor_s, r.source, r.rnk
  {src} r.r_substatus IS NULL AND r.r_status = c.status AND {rest}
  UNION ALL
  SELECT c.*, r.rule_key, r.max_silence_s, r.severity, r.learned, r.floor_s, r.source, r.rnk
  {src} r.r_substatus IS NULL AND r.r_status IS NULL AND r.r_module = c.module AND {rest}
),
picked AS (
  SELECT m.*, ROW_NUMBER() OVER (PARTITION BY m.id ORDER BY m.rnk DESC, m.rule_key) AS pick
  FROM matched m
),
winner AS (
  SELECT p.*,
    CASE WHEN p.learned AND COALESCE(lc.samples, ll.samples) IS NOT NULL
         THEN {greatest}(COALESCE(lc.p90_s, ll.p90_s), COALESCE(p.floor_s, 0))
         ELSE p.max_silence_s END AS threshold_s,
    CASE WHEN p.learned AND COALESCE(lc.samples, ll.samples) IS NOT NULL
         THEN 'learned p90 over ' || CAST(COALESCE(lc.samples, ll.samples) AS varchar)
         ELSE p.source END AS threshold_source
  FROM picked p
  {learned.format(a="lc", carrier="p.carrier")}
  {learned.format(a="ll", carrier="''")}
  WHERE p.pick = 1
)
INSERT INTO alert (id, tenant_id, kind, rule_key, severity, state, shipment_id, carrier, lane,
                   module, status, substatus, threshold_s, threshold_source, last_event_at,
                   silent_since, opened_at, updated_at)
SELECT {new_id}, w.tenant_id, 'shipment', w.rule_key, w.severity, 'open', w.id, w.carrier,
       COALESCE(w.origin, '??') || '-' || COALESCE(w.destination, '??'), w.module, w.status,
       w.substatus, w.threshold_s, w.threshold_source, w.last_event_at, w.silent_since, :now, :now
FROM winner w
WHERE {age} > w.threshold_s
  AND w.carrier NOT IN (SELECT carrier FROM held_back)
ON CONFLICT DO NOTHING
RETURNING id
"""


async def _open_stale(
    session: AsyncSession,
    rules: Sequence[Rule],
    min_samples: int,
    now: datetime,
    recovered_since: datetime,
    pg: bool,
) -> list[uuid.UUID]:
    cte, params = _rules_cte(rules, pg, now)
    cuts = [bindparam(f"r_cut_{i}", type_=UtcDateTime()) for i in range(len(rules))]
    stmt = (
        text(_open_sql(cte, pg))
        .bindparams(
            bindparam("now", type_=UtcDateTime()),
            bindparam("cutoff", type_=UtcDateTime()),
            bindparam("recovered_since", type_=UtcDateTime()),
            *cuts,
        )
        .columns(id=Uuid())
    )
    cutoff = now - timedelta(seconds=_min_silence_s(rules))
    params.update(now=now, cutoff=cutoff, min_samples=min_samples, recovered_since=recovered_since)
    return _ids((await session.execute(stmt, params)).all())

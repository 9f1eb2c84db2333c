"""The stale scan: a few set-based statements, whatever the number of shipments.

One pass, in one transaction:

1. snoozes that ran out re-open;
2. shipment alerts whose shipment moved on (a newer event, delivered, returned, merged) resolve;
3. carrier health (``health.py``): carrier alerts open or resolve;
4. ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` opens one alert per (shipment, rule) for every
   unfinished shipment quiet longer than its winning rule allows, except where the shipment's
   current carrier has an open carrier alert (one carrier alert, not 500 parcel alerts) or had one
   resolved less than ``alert_carrier_recovery_s`` ago (its pollers are still catching up).

Every change is written to the outbox for ``alerts.v1``; on PostgreSQL in the same statement as
the change (``WITH changed AS (... RETURNING *) INSERT INTO outbox_record SELECT
json_build_object(...)``), so a first scan opening a hundred thousand alerts builds no record in
Python. The shipment side reads the timeline's ``shipment`` and ``leg`` tables through SQL only
(bare table names, no import of that service): it walks ``ix_shipment_active_last_event`` from the
oldest silence up to the loosest limit, and keeps a candidate only when its (status, substatus)
could be stale yet: a hash join against a small ``cuts`` table computed here from the rules and the
learned thresholds (for each (rule scope, status, substatus), the earliest silence that the rules
able to win there could call stale). Only those survivors get their last leg looked up and their
rule picked. A shipment's current carrier and module are those of its last leg (the leg that should
be speaking); a leg without its own module yet takes the one its substatus implies.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Uuid, bindparam, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import health, repository
from services.alerts.models import Alert
from services.alerts.rules import Rule, layered
from shared.db import UtcDateTime
from shared.outbox import OutboxRecord
from shared.taxonomy import SUBSTATUS_MODULE, TERMINAL_STATUSES, Status, Substatus

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
)
_GLOBAL_SCOPE = uuid.UUID(int=0)  # the cuts of tenants without rules of their own


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
    result.reopened = await _reopen_snoozed(session, now, pg, topic)
    result.resolved = await _resolve_resumed(session, now, pg, topic)
    opened_c, resolved_c = await health.evaluate(session, config.carrier, now, pg)
    result.carrier_opened = await _publish(session, opened_c, "opened", now, topic)
    result.carrier_resolved = await _publish(
        session, resolved_c, "resolved", now, topic, "carrier answers again"
    )
    rules = await _rules(session, config.base)
    if rules:
        recovered_since = now - timedelta(seconds=config.carrier.recovery_s)
        result.opened = await _open_stale(
            session, rules, config.learned_min_samples, now, recovered_since, pg, topic
        )
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


def _iso(column: str) -> str:
    """A timestamptz as the ISO text the wire schema writes (UTC, ``Z``), NULL stays NULL."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def _published(changed: str, change: str, reason: str | None) -> str:
    """PostgreSQL: ``INSERT INTO outbox_record`` one ``alerts.v1`` record (``AlertChange``, the
    same fields as ``repository.change_record``) per row of the CTE ``changed``."""
    fields = {
        "kind": "'alert_change'",
        "change": f"'{change}'",
        "alert_id": "c.id",
        "alert_kind": "c.kind",
        "tenant_id": "c.tenant_id",
        "rule_key": "c.rule_key",
        "severity": "c.severity",
        "state": "c.state",
        "shipment_id": "c.shipment_id",
        "carrier": "c.carrier",
        "lane": "c.lane",
        "module": "c.module",
        "status": "c.status",
        "substatus": "c.substatus",
        "threshold_s": "c.threshold_s",
        "threshold_source": "c.threshold_source",
        "last_event_at": _iso("c.last_event_at"),
        "silent_since": _iso("c.silent_since"),
        "opened_at": _iso("c.opened_at"),
        "changed_at": _iso("CAST(:now AS timestamptz)"),
        "by": "CAST(NULL AS text)",
        "reason": f"CAST('{reason}' AS text)" if reason else "CAST(NULL AS text)",
    }
    pairs = ", ".join(f"'{k}', {v}" for k, v in fields.items())
    key = "CASE WHEN c.kind = 'carrier' THEN 'carrier:' || c.carrier ELSE CAST(c.shipment_id AS text) END"
    return (
        "INSERT INTO outbox_record (topic, key, value, created_at) "
        f"SELECT CAST(:topic AS varchar), {key}, "
        f"convert_to(CAST(json_build_object({pairs}) AS text), 'UTF8'), CAST(:now AS timestamptz) "
        f"FROM {changed} c"
    )


async def _changed(
    session: AsyncSession,
    sql: str,
    params: dict[str, Any],
    binds: Sequence[Any],
    pg: bool,
    topic: str,
    change: str,
    reason: str | None = None,
) -> int:
    """Run ``sql`` (a data-modifying statement ending in ``RETURNING``, without the columns) and
    write an outbox record per changed alert: in the same statement on PostgreSQL, through
    ``_publish`` elsewhere. Returns how many alerts changed."""
    if pg:
        *ctes, body = sql.split("\n--body\n")
        head = ctes[0] + ",\n" if ctes else "WITH "
        stmt = text(
            f"{head}changed AS ({body} RETURNING *),\n"
            f"published AS ({_published('changed', change, reason)})\n"
            "SELECT count(*) FROM changed"
        ).bindparams(*binds)
        return int((await session.execute(stmt, {**params, "topic": topic})).scalar_one())
    stmt = text(sql.replace("\n--body\n", "\n") + " RETURNING id").bindparams(*binds)
    ids = _ids((await session.execute(stmt.columns(id=Uuid()), params)).all())
    return await _publish(session, ids, change, params["now"], topic, reason)


_NOW = bindparam("now", type_=UtcDateTime())


async def _reopen_snoozed(session: AsyncSession, now: datetime, pg: bool, topic: str) -> int:
    sql = (
        "UPDATE alert SET state = 'open', snoozed_until = NULL, updated_at = :now "
        "WHERE state = 'snoozed' AND snoozed_until <= :now"
    )
    return await _changed(session, sql, {"now": now}, [_NOW], pg, topic, "reopened")


async def _resolve_resumed(session: AsyncSession, now: datetime, pg: bool, topic: str) -> int:
    """Resolve shipment alerts whose shipment spoke again, finished, or was merged away."""
    sql = (
        "UPDATE alert SET state = 'resolved', resolved_at = :now, updated_at = :now, "
        "resolved_reason = 'events resumed' "
        "WHERE kind = 'shipment' AND resolved_at IS NULL AND EXISTS ("
        " SELECT 1 FROM shipment s WHERE s.id = alert.shipment_id AND ("
        f"  s.status IN ({_TERMINAL}) OR s.merged_into_id IS NOT NULL"
        "   OR COALESCE(s.last_event_at, s.created_at) > alert.silent_since))"
    )
    return await _changed(
        session, sql, {"now": now}, [_NOW], pg, topic, "resolved", "events resumed"
    )


# --- opening shipment alerts --------------------------------------------------------------------


def _lower_bound_s(rule: Rule) -> float:
    """No shipment quieter than this can be stale under ``rule`` (learned limits have a floor)."""
    s = rule.spec
    return min(s.max_silence_s, s.floor_s or 0.0) if s.learned else s.max_silence_s


# (status, substatus or "") -> the lowest learned p90 with enough samples: what a learned rule
# can lower its limit to there (never below its floor). No entry: no learned limit applies.
LearnedLows = dict[tuple[str, str], float]


async def _learned_lows(session: AsyncSession, min_samples: int) -> LearnedLows:
    rows = await session.execute(
        text(
            "SELECT status, substatus, MIN(p90_s) FROM alert_learned_threshold "
            "WHERE samples >= :m GROUP BY status, substatus"
        ),
        {"m": min_samples},
    )
    return {(st, sub): float(p90) for st, sub, p90 in rows}


def _bound_at_s(rule: Rule, key: tuple[str, str], lows: LearnedLows) -> float:
    """The least silence ``rule`` can call stale for a shipment in (status, substatus) ``key``."""
    s = rule.spec
    low = lows.get(key)
    if not s.learned or low is None:
        return s.max_silence_s
    return min(s.max_silence_s, max(low, s.floor_s or 0.0))


def _conditional(rule: Rule) -> bool:
    """Whether matching needs more than the status and substatus (carrier, lane, module)."""
    s = rule.spec
    return any(v is not None for v in (s.carrier, s.lane_origin, s.lane_destination, s.module))


def _cuts(
    rules: Sequence[Rule], lows: LearnedLows, now: datetime
) -> list[tuple[uuid.UUID, str, str, datetime]]:
    """(scope, status, substatus or "", cut): a shipment of that scope in that state can be stale
    only if quiet since before ``cut``. The rules that can win there are the best one needing only
    the status and substatus, and any rule needing more that would outrank it."""
    scopes: dict[uuid.UUID, list[Rule]] = {}
    for rule in rules:
        scopes.setdefault(rule.tenant_id or _GLOBAL_SCOPE, []).append(rule)
    out = []
    for scope, own in scopes.items():
        for status in Status:
            for sub in (None, *Substatus):
                matching = [
                    r
                    for r in own
                    if r.spec.status in (None, status) and r.spec.substatus in (None, sub)
                ]
                plain = [r for r in matching if not _conditional(r)]
                if plain:
                    best = min(plain, key=lambda r: (-r.rank, r.key))
                    able = [best] + [
                        r
                        for r in matching
                        if _conditional(r) and (-r.rank, r.key) < (-best.rank, best.key)
                    ]
                else:
                    able = matching
                if not able:
                    continue  # no rule applies: never stale
                key = (status.value, sub.value if sub else "")
                bound = min(_bound_at_s(r, key, lows) for r in able)
                out.append((scope, key[0], key[1], now - timedelta(seconds=bound)))
    return out


def _values_cte(
    name: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    pg: bool,
) -> tuple[str, dict[str, Any]]:
    """``name(...) AS (VALUES ...)`` with one bound row per row (typed for PostgreSQL)."""
    params: dict[str, Any] = {}
    out = []
    for i, values in enumerate(rows):
        cells = []
        for (col, sqltype), value in zip(columns, values, strict=True):
            if isinstance(value, uuid.UUID) and not pg:
                value = value.hex
            params[f"{col}_{i}"] = value
            if pg:
                value_sql = f"CAST(:{col}_{i} AS {sqltype})"
                if sqltype == "boolean":
                    value_sql = f"(CAST(:{col}_{i} AS integer) = 1)"
                cells.append(value_sql)
            else:
                cells.append(f":{col}_{i}")
        out.append(f"({', '.join(cells)})")
    names = ", ".join(col for col, _ in columns)
    return f"{name}({names}) AS (VALUES {', '.join(out)})", params


_STATE_VALUE = re.compile(r"^[a-z_]*$")


def _cuts_cte(cuts: Sequence[tuple[uuid.UUID, str, str, datetime]], pg: bool) -> str:
    """``cuts(scope, k_status, k_substatus, k_cut) AS (VALUES ...)`` written out as literals: a
    row per (scope, state) would otherwise cost four bound parameters each, and every tenant with
    rules of its own adds up to 200 rows. Every value is generated here (a UUID, a taxonomy value,
    a timestamp), none comes from input; timestamps are written as each database stores them."""
    rows = []
    for scope, status, substatus, cut in cuts:
        if not (_STATE_VALUE.match(status) and _STATE_VALUE.match(substatus)):
            raise ValueError(f"not a taxonomy value: {status!r} / {substatus!r}")
        at = cut.astimezone(UTC)
        if pg:
            rows.append(
                f"(CAST('{scope}' AS uuid), CAST('{status}' AS varchar), "
                f"CAST('{substatus}' AS varchar), CAST('{at.isoformat()}' AS timestamptz))"
            )
        else:  # SQLite keeps UTC timestamps as text, in this format, and compares them as text
            rows.append(
                f"('{scope.hex}', '{status}', '{substatus}', '{at.strftime('%Y-%m-%d %H:%M:%S.%f')}')"
            )
    return f"cuts(scope, k_status, k_substatus, k_cut) AS (VALUES {', '.join(rows)})"


def _rules_cte(rules: Sequence[Rule], pg: bool) -> tuple[str, dict[str, Any]]:
    rows = []
    for rule in rules:
        s = rule.spec
        rows.append(
            (
                rule.tenant_id,
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
            )
        )
    return _values_cte("rules", _RULE_COLUMNS, rows, pg)


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


def _open_sql(rules_cte: str, cuts_cte: str, pg: bool) -> str:
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
{cuts_cte},
overridden AS (SELECT DISTINCT tenant_id FROM rules WHERE tenant_id IS NOT NULL),
held_back AS (
  SELECT DISTINCT carrier FROM alert
  WHERE kind = 'carrier' AND carrier IS NOT NULL
    AND (resolved_at IS NULL OR resolved_at > :recovered_since)
),
pre AS (
  SELECT s.id, s.tenant_id, s.tracking_number, s.status, s.substatus, s.origin_country AS origin,
         s.destination_country AS destination, s.last_event_at, s.carrier,
         COALESCE(s.last_event_at, s.created_at) AS silent_since
  FROM shipment s
  LEFT JOIN overridden o ON o.tenant_id = s.tenant_id
  JOIN cuts k ON k.scope = COALESCE(o.tenant_id, :global_scope) AND k.k_status = s.status
    AND k.k_substatus = COALESCE(s.substatus, '')
  WHERE s.status NOT IN ({_TERMINAL}) AND s.merged_into_id IS NULL AND s.tenant_id IS NOT NULL
    AND (s.last_event_at < :cutoff OR (s.last_event_at IS NULL AND s.created_at < :cutoff))
    AND COALESCE(s.last_event_at, s.created_at) < k.k_cut
    AND NOT EXISTS (SELECT 1 FROM alert a WHERE a.kind = 'shipment' AND a.resolved_at IS NULL
                    AND a.shipment_id = s.id)
    -- An alert resolved (events resumed, or by hand) restarts the clock: a back-dated scan that
    -- resolved it must not reopen it in the same breath; the parcel gets a threshold's grace.
    AND NOT EXISTS (SELECT 1 FROM alert a WHERE a.kind = 'shipment' AND a.shipment_id = s.id
                    AND a.resolved_at > k.k_cut)
),
cand AS (
  SELECT p.id, p.tenant_id, p.tracking_number, p.status, p.substatus, p.origin, p.destination,
         p.last_event_at, p.silent_since, {carrier} AS carrier, {module} AS module
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
--body
INSERT INTO alert (id, tenant_id, kind, rule_key, severity, state, shipment_id, tracking_number,
                   carrier, lane, module, status, substatus, threshold_s, threshold_source,
                   last_event_at, silent_since, opened_at, updated_at)
SELECT {new_id}, w.tenant_id, 'shipment', w.rule_key, w.severity, 'open', w.id, w.tracking_number,
       w.carrier, COALESCE(w.origin, '??') || '-' || COALESCE(w.destination, '??'), w.module,
       w.status, w.substatus, w.threshold_s, w.threshold_source, w.last_event_at, w.silent_since,
       :now, :now
FROM winner w
WHERE {age} > w.threshold_s
  AND w.carrier NOT IN (SELECT carrier FROM held_back)
ON CONFLICT DO NOTHING"""


async def _open_stale(
    session: AsyncSession,
    rules: Sequence[Rule],
    min_samples: int,
    now: datetime,
    recovered_since: datetime,
    pg: bool,
    topic: str,
) -> int:
    cuts = _cuts(rules, await _learned_lows(session, min_samples), now)
    if not cuts:
        return 0
    rules_cte, params = _rules_cte(rules, pg)
    cuts_cte = _cuts_cte(cuts, pg)
    binds = [
        _NOW,
        bindparam("cutoff", type_=UtcDateTime()),
        bindparam("recovered_since", type_=UtcDateTime()),
        bindparam("global_scope", type_=Uuid()),
    ]
    params.update(
        now=now,
        cutoff=max(cut for *_, cut in cuts),
        min_samples=min_samples,
        recovered_since=recovered_since,
        global_scope=_GLOBAL_SCOPE,
    )
    return await _changed(
        session, _open_sql(rules_cte, cuts_cte, pg), params, binds, pg, topic, "opened"
    )

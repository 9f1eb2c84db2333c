"""Learned thresholds: the observed p90 dwell per (lane, carrier, status, substatus).

A dwell is the time from one event of a shipment to its next event (across legs: the wait after
"arrived in the destination country" ends with the destination carrier's first scan). Dwells of
the last ``window_s`` are grouped by the shipment's lane and the event's carrier, status and
substatus, and once more with the carrier left out (``carrier = ''``: the lane's figure, used when
the shipment's current carrier has none of its own). Groups with fewer than ``min_samples`` dwells
are not kept. One statement rebuilds the table: ``percentile_cont(0.9)`` on PostgreSQL, the
nearest-rank p90 through window functions on SQLite.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.models import LearnedThreshold
from shared.db import UtcDateTime

_KEYS = "o, d, carrier, status, substatus"


def _dwells(pg: bool) -> str:
    gap = (
        "EXTRACT(EPOCH FROM (next_at - occurred_at))"
        if pg
        else "((julianday(next_at) - julianday(occurred_at)) * 86400.0)"
    )
    return f"""
ev AS (
  SELECT COALESCE(s.origin_country, '') AS o, COALESCE(s.destination_country, '') AS d,
         e.carrier, e.status, COALESCE(e.substatus, '') AS substatus, e.occurred_at,
         LEAD(e.occurred_at) OVER (
           PARTITION BY l.shipment_id ORDER BY e.occurred_at, e.sequence) AS next_at
  FROM tracking_event e
  JOIN leg l ON l.tracking_number = e.tracking_number AND l.carrier = e.carrier
  JOIN shipment s ON s.id = l.shipment_id
  WHERE e.occurred_at IS NOT NULL AND e.occurred_at >= :since
),
dwell AS (
  SELECT o, d, carrier, status, substatus, {gap} AS dwell_s FROM ev WHERE next_at IS NOT NULL
  UNION ALL
  SELECT o, d, '' AS carrier, status, substatus, {gap} AS dwell_s FROM ev WHERE next_at IS NOT NULL
)"""


def _sql(pg: bool) -> str:
    insert = (
        "INSERT INTO alert_learned_threshold "
        "(lane_origin, lane_destination, carrier, status, substatus, p90_s, samples, computed_at)"
    )
    if pg:
        return f"""{insert}
WITH {_dwells(pg)}
SELECT {_KEYS}, percentile_cont(0.9) WITHIN GROUP (ORDER BY dwell_s), COUNT(*), :now
FROM dwell GROUP BY {_KEYS} HAVING COUNT(*) >= :min_samples"""
    return f"""{insert}
WITH {_dwells(pg)},
ranked AS (
  SELECT {_KEYS}, dwell_s,
         ROW_NUMBER() OVER (PARTITION BY {_KEYS} ORDER BY dwell_s) AS rn,
         COUNT(*) OVER (PARTITION BY {_KEYS}) AS n
  FROM dwell
)
SELECT {_KEYS}, MIN(dwell_s), MAX(n), :now FROM ranked
WHERE n >= :min_samples AND rn * 10 >= n * 9
GROUP BY {_KEYS}"""


async def refresh(
    session: AsyncSession, now: datetime, *, window_s: float, min_samples: int
) -> int:
    """Rebuild ``alert_learned_threshold``; returns how many groups have a learned figure."""
    pg = session.bind.dialect.name == "postgresql"
    await session.execute(delete(LearnedThreshold))
    stmt = text(_sql(pg)).bindparams(
        bindparam("now", type_=UtcDateTime()), bindparam("since", type_=UtcDateTime())
    )
    params = {"now": now, "since": now - timedelta(seconds=window_s), "min_samples": min_samples}
    result = await session.execute(stmt, params)
    return int(getattr(result, "rowcount", 0) or 0)

"""The sender's hot path on PostgreSQL: one statement per claim and one per batch of successes.

The sender shares its event loop with hundreds of requests in flight, so each database round trip
waits behind their callbacks; a claim that took a transaction (begin, select, update, commit, and
the pool's ping) cost several of those waits. Here a claim is a single statement, run outside any
transaction on a plain asyncpg connection: it locks due rows with ``FOR UPDATE SKIP LOCKED``,
keeps at most each endpoint's share, leases them and returns what sending takes. Successes (nearly
every outcome) are settled the same way: the attempt rows, the deliveries marked succeeded and the
endpoints' failure streaks cleared, in one statement for the whole batch. Everything else (retries,
``Retry-After``, 410, disabling) goes through ``handlers.settle`` as before.

The semantics are those of ``repository.claim_due`` + ``repository.lease`` and of the success branch
of ``handlers.settle``; SQLite keeps using those.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from services.webhooks.handlers import AttemptResult
from services.webhooks.models import PENDING, SUCCEEDED, signing_secrets
from services.webhooks.repository import Claimed

CLAIM = f"""
WITH due AS (
    SELECT d.id, d.endpoint_id, d.next_attempt_at
    FROM webhook_delivery d
    JOIN webhook_endpoint e ON e.id = d.endpoint_id
    WHERE d.status = '{PENDING}' AND d.next_attempt_at <= $1
      AND (d.lease_until IS NULL OR d.lease_until < $1)
      AND e.enabled IS TRUE
      AND d.endpoint_id <> ALL($4::uuid[])
    ORDER BY d.next_attempt_at, d.id
    LIMIT $3
    FOR UPDATE OF d SKIP LOCKED
), ranked AS (
    SELECT due.id, due.endpoint_id,
        row_number() OVER (PARTITION BY due.endpoint_id ORDER BY due.next_attempt_at, due.id) AS n
    FROM due
), held AS (
    SELECT * FROM unnest($5::uuid[], $6::int[]) AS h(endpoint_id, n)
), taken AS (
    SELECT ranked.id FROM ranked LEFT JOIN held ON held.endpoint_id = ranked.endpoint_id
    WHERE ranked.n <= $7 - coalesce(held.n, 0)
)
UPDATE webhook_delivery d SET lease_until = $2
FROM taken, webhook_endpoint e, webhook_event v
WHERE d.id = taken.id AND e.id = d.endpoint_id AND v.id = d.event_id
RETURNING d.id, d.endpoint_id, d.event_id, d.next_attempt_at, e.url, e.secret, e.previous_secret,
    e.previous_secret_expires_at, v.body
"""

SUCCEEDED_SQL = f"""
WITH r AS (
    SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::int[], $4::int[], $5::text[])
        AS r(id, attempted_at, status_code, latency_ms, response_body)
), d AS (
    UPDATE webhook_delivery d
    SET status = '{SUCCEEDED}', attempt_count = d.attempt_count + 1,
        last_status_code = r.status_code, last_error = NULL, lease_until = NULL,
        next_attempt_at = NULL, delivered_at = r.attempted_at, updated_at = $6
    FROM r WHERE d.id = r.id
    RETURNING d.id, d.endpoint_id
), a AS (
    INSERT INTO webhook_attempt (delivery_id, attempted_at, status_code, latency_ms, response_body)
    SELECT r.id, r.attempted_at, r.status_code, r.latency_ms, r.response_body
    FROM r JOIN d ON d.id = r.id
)
UPDATE webhook_endpoint e SET failing_since = NULL
WHERE e.id IN (SELECT endpoint_id FROM d) AND e.failing_since IS NOT NULL
"""


async def claim(
    conn: Any,
    now: datetime,
    lease_until: datetime,
    *,
    limit: int,
    per_endpoint: int,
    held: Mapping[uuid.UUID, int],
    exclude: Iterable[uuid.UUID] = (),
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries of enabled endpoints, oldest first, at most
    ``per_endpoint`` held per endpoint counting the ``held`` ones; skips ``exclude``."""
    rows = await conn.fetch(
        CLAIM, now, lease_until, limit, list(exclude), list(held), list(held.values()), per_endpoint
    )
    rows = sorted(rows, key=lambda r: (r["next_attempt_at"], r["id"]))
    return [
        Claimed(
            r["id"],
            r["endpoint_id"],
            r["event_id"],
            r["url"],
            signing_secrets(
                r["secret"], r["previous_secret"], r["previous_secret_expires_at"], now
            ),
            r["body"],
        )
        for r in rows
    ]


async def record_successes(conn: Any, results: Sequence[AttemptResult], now: datetime) -> None:
    """Attempt rows, deliveries succeeded, failure streaks cleared: one statement. A delivery
    deleted meanwhile (its endpoint was) is skipped, as ``handlers.settle`` does."""
    if not results:
        return
    await conn.execute(
        SUCCEEDED_SQL,
        [r.delivery_id for r in results],
        [r.attempted_at for r in results],
        [r.outcome.status_code for r in results],
        [r.outcome.latency_ms for r in results],
        [r.outcome.response_body for r in results],
        now,
    )

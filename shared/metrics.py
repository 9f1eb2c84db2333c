"""Prometheus metrics: one process-wide registry, the metric names every role reports, and the
ways they are served.

- The ``api`` role (and ``all``, ``demo``) serves ``GET /metrics`` on its own app.
- Any role serves the same registry on ``metrics_host:metrics_port`` when ``metrics_port`` is set
  (0 = off), which is how the roles without HTTP (``timeline-consumer``, ``carriers-poller``,
  ``webhooks-consumer``, ``webhooks-sender``) are scraped.

Names (the Grafana dashboard in deploy/grafana/throughline.json reads these):

==========================================  =========  ==============================================
``throughline_consumer_records_total``      counter    records committed by a consumer loop
                                                        {group, topic}
``throughline_events_ingested_total``       counter    tracking events stored by a consumer {group}
``throughline_consumer_lag``                gauge      records behind per partition {group, topic,
                                                        partition}; Kafka: highwater - position,
                                                        SQL log: records after the committed offset
``throughline_consumer_batch_seconds``      histogram  one batch, poll to commit {group}
``throughline_consumer_retries_total``      counter    transient failures retried in place {group}
``throughline_dlq_records_total``           counter    records sent to a DLQ {group, topic, reason}
``throughline_carrier_polls_total``         counter    carrier requests {carrier, outcome}
``throughline_carrier_poll_errors_total``   counter    failed carrier requests {carrier, reason}
``throughline_carrier_poll_seconds``        histogram  carrier request latency {carrier}
``throughline_carrier_dlq_total``           counter    unreadable carrier answers {carrier}
``throughline_webhook_attempts_total``      counter    webhook POSTs {outcome}
``throughline_webhook_attempt_seconds``     histogram  webhook POST latency {outcome}
``throughline_http_requests_total``         counter    API requests {method, route, status}
``throughline_http_request_seconds``        histogram  API latency {method, route}
``throughline_alerts_open``                 gauge      open alerts (read at scrape time)
==========================================  =========  ==============================================
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("throughline.metrics")

_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

CONSUMER_RECORDS = Counter(
    "throughline_consumer_records", "Records committed by a consumer loop", ["group", "topic"]
)
EVENTS_INGESTED = Counter(
    "throughline_events_ingested", "Tracking events stored by a consumer loop", ["group"]
)
CONSUMER_LAG = Gauge(
    "throughline_consumer_lag",
    "Records not yet consumed, per partition (Kafka: highwater - position; "
    "SQL log: records after the committed offset)",
    ["group", "topic", "partition"],
)
CONSUMER_BATCH_SECONDS = Histogram(
    "throughline_consumer_batch_seconds",
    "One consumer batch, from decode to offset commit",
    ["group"],
    buckets=_FAST,
)
CONSUMER_RETRIES = Counter(
    "throughline_consumer_retries", "Transient failures retried in place by a consumer", ["group"]
)
DLQ_RECORDS = Counter(
    "throughline_dlq_records", "Records sent to a dead-letter topic", ["group", "topic", "reason"]
)
CARRIER_POLLS = Counter(
    "throughline_carrier_polls",
    "Carrier tracking requests by outcome (ok, unavailable, error)",
    ["carrier", "outcome"],
)
CARRIER_POLL_ERRORS = Counter(
    "throughline_carrier_poll_errors",
    "Carrier requests that failed (http_429, http_5xx, network, other)",
    ["carrier", "reason"],
)
CARRIER_POLL_SECONDS = Histogram(
    "throughline_carrier_poll_seconds", "Carrier request latency", ["carrier"], buckets=_FAST
)
CARRIER_DLQ = Counter(
    "throughline_carrier_dlq",
    "Carrier answers that could not be read (to the raw DLQ)",
    ["carrier"],
)
WEBHOOK_ATTEMPTS = Counter(
    "throughline_webhook_attempts",
    "Webhook delivery attempts by outcome (success, client_error, rate_limited, gone, "
    "server_error, network)",
    ["outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "throughline_webhook_attempt_seconds",
    "Webhook delivery attempt latency",
    ["outcome"],
    buckets=_FAST,
)
HTTP_REQUESTS = Counter(
    "throughline_http_requests", "API requests answered", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "throughline_http_request_seconds", "API request latency", ["method", "route"], buckets=_FAST
)
ALERTS_OPEN = Gauge(
    "throughline_alerts_open", "Open alerts (read from the database at scrape time)"
)


def webhook_outcome(status_code: int | None) -> str:
    if status_code is None:
        return "network"
    if 200 <= status_code < 300:
        return "success"
    if status_code == 429:
        return "rate_limited"
    if status_code == 410:
        return "gone"
    if status_code >= 500:
        return "server_error"
    return "client_error"


def poll_error_reason(status_code: int | None) -> str:
    if status_code == 429:
        return "http_429"
    if status_code is not None and status_code >= 500:
        return "http_5xx"
    if status_code is None:
        return "network"
    return "other"


# --- open alerts ----------------------------------------------------------------------------------

OpenAlerts = Callable[[AsyncEngine], Awaitable[int | None]]
_open_alerts: OpenAlerts | None = None


def set_open_alerts_source(source: OpenAlerts | None) -> None:
    """The alerts feature registers how to count open alerts; until then ``count_open_alerts``."""
    global _open_alerts
    _open_alerts = source


async def count_open_alerts(engine: AsyncEngine) -> int | None:
    """Rows of the ``alert`` table not resolved (``resolved_at`` null, when there is such a
    column); None when the table does not exist in this database."""

    def shape(sync_conn: Connection) -> set[str] | None:
        insp = inspect(sync_conn)
        if not insp.has_table("alert"):
            return None
        return {c["name"] for c in insp.get_columns("alert")}

    async with engine.connect() as conn:
        columns = await conn.run_sync(shape)
        if columns is None:
            return None
        where = " where resolved_at is null" if "resolved_at" in columns else ""
        return int((await conn.execute(text(f"select count(*) from alert{where}"))).scalar_one())


async def refresh_open_alerts(engine: AsyncEngine) -> None:
    """Sets ``throughline_alerts_open``; a failure leaves the last value and is only logged."""
    try:
        value = await (_open_alerts or count_open_alerts)(engine)
    except Exception as exc:  # noqa: BLE001 - a scrape must not fail because of one gauge
        log.debug("open alerts not read", extra={"error": repr(exc)})
        return
    if value is not None:
        ALERTS_OPEN.set(value)


# --- serving --------------------------------------------------------------------------------------


def render() -> tuple[bytes, str]:
    """The registry in the Prometheus text format, with its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


@contextlib.contextmanager
def metrics_server(host: str, port: int) -> Iterator[int | None]:
    """Serve ``/metrics`` on ``host:port`` in a thread while the block runs (port 0: nothing)."""
    if port <= 0:
        yield None
        return
    server, thread = start_http_server(port, addr=host)
    log.info("metrics listening", extra={"url": f"http://{host}:{port}/metrics"})
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

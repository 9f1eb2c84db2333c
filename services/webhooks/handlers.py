"""Webhooks use cases. Each takes the session first and only flushes; the caller commits.

Deliveries are rows written in the same transaction as the change that causes them (the outbox of
DESIGN.md): a shipment update's events and deliveries, a test event, the ``endpoint.disabled``
notice written together with the disabling attempt.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.webhooks import repository
from services.webhooks.client import Outcome
from services.webhooks.events import (
    NewEvent,
    endpoint_disabled_event,
    events_for_update,
    leg_data,
    stale_event,
)
from services.webhooks.models import (
    FAILED,
    PENDING,
    WebhookEndpoint,
)
from services.webhooks.schedule import next_delay
from shared.schema import AlertChange, ShipmentUpdate
from shared.settings import Settings


@dataclass(frozen=True)
class Policy:
    retry_scale: float = 1.0
    disable_after_s: float = 5 * 86400.0
    secret_overlap_s: float = 86400.0
    allow_loopback: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            retry_scale=settings.webhook_retry_scale,
            disable_after_s=settings.webhook_disable_after_s,
            secret_overlap_s=settings.webhook_secret_overlap_s,
            allow_loopback=settings.webhook_allow_loopback,
        )


@dataclass(frozen=True)
class AttemptResult:
    delivery_id: int
    attempted_at: datetime
    outcome: Outcome


# --- producing deliveries ----------------------------------------------------------------------


def delivery_row(event: NewEvent, endpoint: WebhookEndpoint, now: datetime) -> dict[str, Any]:
    return {
        "tenant_id": event.tenant_id,
        "endpoint_id": endpoint.id,
        "event_id": event.id,
        "event_type": event.type,
        "status": PENDING,
        "attempt_count": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


async def schedule_events(
    session: AsyncSession,
    events: Sequence[NewEvent],
    now: datetime,
    *,
    skip_endpoint: uuid.UUID | None = None,
) -> int:
    """Store events idempotently and one delivery per (new event, enabled endpoint that wants it)."""
    if not events:
        return 0
    new_ids = await repository.insert_events(session, events)
    fresh = [e for e in events if e.id in new_ids]
    endpoints = await repository.enabled_endpoints(session, {e.tenant_id for e in fresh})
    rows = [
        delivery_row(event, endpoint, now)
        for event in fresh
        for endpoint in endpoints[event.tenant_id]
        if endpoint.wants(event.type) and endpoint.id != skip_endpoint
    ]
    return await repository.insert_deliveries(session, rows)


async def schedule_updates(
    session: AsyncSession, updates: Sequence[ShipmentUpdate], now: datetime
) -> int:
    """A batch of shipment updates → events and deliveries; a replayed update makes nothing new."""
    mine = [u for u in updates if u.tenant_id is not None]
    if not mine:
        return 0
    states = await repository.load_states(session, {u.shipment_id for u in mine})
    seen: dict[uuid.UUID, tuple[datetime, list[tuple[str, str]]]] = {
        sid: (s.updated_at, [(leg["carrier"], leg["tracking_number"]) for leg in s.legs])
        for sid, s in states.items()
    }
    events: list[NewEvent] = []
    latest: dict[uuid.UUID, ShipmentUpdate] = {}
    for update in mine:
        before = seen.get(update.shipment_id)
        events.extend(events_for_update(update, before[1] if before else None))
        if before is None or update.updated_at >= before[0]:
            legs = [(leg.carrier, leg.tracking_number) for leg in update.legs]
            seen[update.shipment_id] = (update.updated_at, legs)
            latest[update.shipment_id] = update
    await repository.upsert_states(session, [_state_row(u) for u in latest.values()])
    return await schedule_events(session, events, now)


def _state_row(update: ShipmentUpdate) -> dict[str, Any]:
    return {
        "shipment_id": update.shipment_id,
        "tenant_id": update.tenant_id,
        "legs": [leg_data(leg) for leg in update.legs],
        "status": update.status.value,
        "substatus": update.substatus.value if update.substatus else None,
        "last_event_at": update.last_event_at,
        "updated_at": update.updated_at,
    }


async def schedule_stale(
    session: AsyncSession, alerts: Sequence[AlertChange], now: datetime
) -> int:
    """``shipment.stale`` for each opened shipment alert (the alerts service decides staleness)."""
    opened = [
        a
        for a in alerts
        if a.change == "opened" and a.alert_kind == "shipment" and a.tenant_id is not None
    ]
    if not opened:
        return 0
    states = await repository.load_states(session, {a.shipment_id for a in opened if a.shipment_id})
    events = [
        stale_event(a, list(states[a.shipment_id].legs) if a.shipment_id in states else [])
        for a in opened
    ]
    return await schedule_events(session, events, now)


# --- disabling -----------------------------------------------------------------------------


async def disable_endpoint(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    reason: str,
    now: datetime,
    *,
    notify: bool = True,
) -> None:
    """Stop sending; pending deliveries fail (a replay recovers them after re-enabling). With
    ``notify``, the tenant's other endpoints get ``endpoint.disabled``."""
    endpoint.enabled = False
    endpoint.disabled_reason = reason[:500]
    endpoint.disabled_at = now
    endpoint.updated_at = now
    await session.flush()
    await repository.fail_pending(session, endpoint.id, f"endpoint disabled: {reason}"[:500], now)
    if notify:
        event = endpoint_disabled_event(endpoint.tenant_id, endpoint.id, endpoint.url, reason, now)
        await schedule_events(session, [event], now, skip_endpoint=endpoint.id)


# --- settling attempts (the sender) ------------------------------------------------------------


async def settle(
    session: AsyncSession, results: Sequence[AttemptResult], policy: Policy, now: datetime
) -> None:
    """Record attempts and move each delivery on: done, retry later, or failed for good.

    The sender's hot path: many outcomes per transaction in a few statements; endpoints are
    loaded only for failures (to track failure streaks and disable)."""
    states = await repository.delivery_states(session, [r.delivery_id for r in results])
    attempts: list[dict[str, Any]] = []
    done: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []
    healthy: set[uuid.UUID] = set()
    failing: list[tuple[AttemptResult, uuid.UUID]] = []
    for result in results:
        state = states.get(result.delivery_id)
        if state is None:  # its endpoint was deleted meanwhile
            continue
        attempts.append(_attempt_row(result))
        o = result.outcome
        common = {
            "b_id": result.delivery_id,
            "attempt_count": state.attempt_count + 1,
            "last_status_code": o.status_code,
            "lease_until": None,
            "updated_at": now,
        }
        if o.ok:
            done.append({**common, "last_error": None, "delivered_at": result.attempted_at})
            healthy.add(state.endpoint_id)
            continue
        status, next_at = state.status, None
        if state.status == PENDING:  # not settled meanwhile (a disabled endpoint's)
            status, next_at = _next_attempt(result, state.attempt_count + 1, policy)
            failing.append((result, state.endpoint_id))
        error = o.error or f"HTTP {o.status_code}"
        moved.append({**common, "status": status, "next_attempt_at": next_at, "last_error": error})
    await repository.record_outcomes(session, attempts, done, moved)
    await repository.clear_failure_streaks(session, healthy)
    await _track_failures(session, failing, policy, now)


def _next_attempt(
    result: AttemptResult, attempts_made: int, policy: Policy
) -> tuple[str, datetime | None]:
    o = result.outcome
    if o.status_code == 410:
        return FAILED, None
    delay = next_delay(attempts_made, scale=policy.retry_scale, retry_after_s=o.retry_after_s)
    if delay is None:
        return FAILED, None
    return PENDING, result.attempted_at + timedelta(seconds=delay)


def _attempt_row(result: AttemptResult) -> dict[str, Any]:
    o = result.outcome
    return {
        "delivery_id": result.delivery_id,
        "attempted_at": result.attempted_at,
        "status_code": o.status_code,
        "latency_ms": o.latency_ms,
        "response_body": o.response_body,
        "error": o.error,
    }


async def _track_failures(
    session: AsyncSession,
    failing: Sequence[tuple[AttemptResult, uuid.UUID]],
    policy: Policy,
    now: datetime,
) -> None:
    """Failure streaks per endpoint; a 410, or failing for too long, disables the endpoint."""
    if not failing:
        return
    endpoints = await repository.endpoints_by_id(session, {e for _, e in failing})
    for result, endpoint_id in failing:
        endpoint, at = endpoints[endpoint_id], result.attempted_at
        if not endpoint.enabled:
            continue
        if result.outcome.status_code == 410:
            await disable_endpoint(session, endpoint, "the endpoint answered 410 Gone", now)
            continue
        endpoint.failing_since = min(endpoint.failing_since or at, at)
        if (at - endpoint.failing_since).total_seconds() >= policy.disable_after_s:
            since = endpoint.failing_since.strftime("%Y-%m-%d %H:%M UTC")
            await disable_endpoint(
                session, endpoint, f"every delivery has failed since {since}", now
            )
    await session.flush()

"""Webhook endpoint use cases: register, change, rotate the secret, test, replay. Each takes the
session first and only flushes; the caller commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.webhooks import repository, signing, ssrf
from services.webhooks.events import sample_event
from services.webhooks.handlers import Policy, delivery_row, disable_endpoint
from services.webhooks.models import WebhookDelivery, WebhookEndpoint
from shared.errors import Conflict, NotFound

MAX_ENDPOINTS = 20  # per tenant: each one multiplies every event


async def create_endpoint(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    policy: Policy,
    *,
    url: str,
    description: str = "",
    event_types: Sequence[str] = (),
    enabled: bool = True,
    secret: str | None = None,
) -> WebhookEndpoint:
    await ssrf.validate_url(url, allow_loopback=policy.allow_loopback)
    if secret is not None:
        signing.secret_bytes(secret)
    if len(await repository.list_endpoints(session, tenant_id)) >= MAX_ENDPOINTS:
        raise Conflict(f"a tenant has at most {MAX_ENDPOINTS} webhook endpoints; delete one first")
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id,
        url=url.strip(),
        description=description,
        event_types=sorted(set(event_types)),
        enabled=enabled,
        disabled_reason=None if enabled else "disabled through the API",
        secret=secret or signing.generate_secret(),
    )
    return await repository.add_endpoint(session, endpoint)


async def get_endpoint(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await repository.get_endpoint(session, tenant_id, endpoint_id)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


async def update_endpoint(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    policy: Policy,
    changes: dict[str, Any],
    now: datetime,
) -> WebhookEndpoint:
    """Apply the fields a PATCH named; enabling clears the disabled state and failure streak."""
    if "url" in changes:
        await ssrf.validate_url(changes["url"], allow_loopback=policy.allow_loopback)
        endpoint.url = changes["url"].strip()
    if "description" in changes:
        endpoint.description = changes["description"]
    if "event_types" in changes:
        endpoint.event_types = sorted(set(changes["event_types"]))
    if changes.get("enabled") is True and not endpoint.enabled:
        endpoint.enabled = True
        endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
    elif changes.get("enabled") is False and endpoint.enabled:
        await disable_endpoint(session, endpoint, "disabled through the API", now, notify=False)
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def rotate_secret(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    policy: Policy,
    now: datetime,
    secret: str | None = None,
) -> WebhookEndpoint:
    """A new secret signs from now on; the old one signs too until the overlap window ends."""
    if secret is not None:
        signing.secret_bytes(secret)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + timedelta(seconds=policy.secret_overlap_s)
    endpoint.secret = secret or signing.generate_secret()
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def send_test(
    session: AsyncSession, endpoint: WebhookEndpoint, event_type: str, now: datetime
) -> WebhookDelivery:
    """A sample event to this endpoint only, whatever its filter."""
    if not endpoint.enabled:
        raise Conflict("the endpoint is disabled; enable it before sending a test event")
    event = sample_event(endpoint.tenant_id, event_type, now)
    await repository.insert_events(session, [event])
    delivery = WebhookDelivery(**delivery_row(event, endpoint, now))
    session.add(delivery)
    await session.flush()
    return delivery


async def replay_delivery(
    session: AsyncSession, tenant_id: uuid.UUID, delivery_id: int, now: datetime
) -> WebhookDelivery:
    delivery = await repository.get_delivery(session, tenant_id, delivery_id)
    if delivery is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    endpoint = await get_endpoint(session, tenant_id, delivery.endpoint_id)
    if not endpoint.enabled:
        raise Conflict("the endpoint is disabled; enable it before replaying")
    await repository.requeue(
        session, tenant_id, repository.DeliveryFilter(), now, delivery_id=delivery_id
    )
    await session.refresh(delivery)
    return delivery


async def replay_range(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    since: datetime,
    until: datetime | None,
    statuses: Sequence[str],
    now: datetime,
) -> int:
    if not endpoint.enabled:
        raise Conflict("the endpoint is disabled; enable it before replaying")
    f = repository.DeliveryFilter(endpoint_id=endpoint.id, since=since, until=until)
    return await repository.requeue(session, endpoint.tenant_id, f, now, statuses=statuses)

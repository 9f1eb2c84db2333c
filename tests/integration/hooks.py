"""Helpers for the merchant webhook tests: a runtime tuned for tests, tenants, endpoints, updates,
a running sender, and polling until something is true."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.cli.runtime import Runtime
from services.webhooks import endpoints, handlers
from services.webhooks.handlers import Policy
from services.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.webhooks.sender import Sender
from shared.auth import create_api_key, create_tenant
from shared.db import transaction
from shared.schema import AlertChange, LegRef, ShipmentUpdate
from shared.taxonomy import Status

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def tuned(stack: Runtime, **overrides: Any) -> Runtime:
    """The stack with fast retries, quick polling and loopback receivers allowed."""
    settings = stack.settings.model_copy(
        update={
            "webhook_allow_loopback": True,
            "webhook_retry_scale": 0.001,
            "webhook_poll_interval_s": 0.05,
            "webhook_timeout_s": 5.0,
            **overrides,
        }
    )
    return dataclasses.replace(stack, settings=settings)


async def new_tenant(rt: Runtime, name: str) -> tuple[uuid.UUID, str]:
    async with transaction(rt.sessions) as s:
        tenant = await create_tenant(s, name)
        _, key = await create_api_key(s, tenant.id, ("merchant",))
    return tenant.id, key


async def new_endpoint(
    rt: Runtime, tenant_id: uuid.UUID, url: str, **kwargs: Any
) -> WebhookEndpoint:
    policy = dataclasses.replace(Policy.from_settings(rt.settings), allow_loopback=True)
    async with transaction(rt.sessions) as s:
        return await endpoints.create_endpoint(s, tenant_id, policy, url=url, **kwargs)


def shipment_update(
    tenant_id: uuid.UUID,
    shipment_id: uuid.UUID,
    status: Status,
    previous: Status | None,
    *,
    legs: Sequence[tuple[str, str]] = (("dhl", "1234567891"),),
    at: datetime = T0,
) -> ShipmentUpdate:
    return ShipmentUpdate(
        shipment_id=shipment_id,
        tenant_id=tenant_id,
        status=status,
        previous_status=previous,
        legs=[LegRef(carrier=c, tracking_number=n) for c, n in legs],
        updated_at=at,
    )


def journey(tenant_id: uuid.UUID, shipment_id: uuid.UUID) -> list[ShipmentUpdate]:
    """Registration, then three status changes: 3 status_changed + 1 delivered events."""
    steps = [
        (Status.PENDING, None),
        (Status.INFO_RECEIVED, Status.PENDING),
        (Status.IN_TRANSIT, Status.INFO_RECEIVED),
        (Status.DELIVERED, Status.IN_TRANSIT),
    ]
    return [
        shipment_update(tenant_id, shipment_id, s, p, at=T0 + timedelta(hours=i))
        for i, (s, p) in enumerate(steps)
    ]


def alert_change(
    tenant: uuid.UUID | None,
    shipment: uuid.UUID | None,
    change: str,
    *,
    alert_id: uuid.UUID | None = None,
    alert_kind: str = "shipment",
) -> AlertChange:
    """An ``alerts.v1`` record as the alerts scan publishes one."""
    return AlertChange.model_validate(
        {
            "change": change,
            "alert_id": alert_id or uuid.uuid4(),
            "alert_kind": alert_kind,
            "tenant_id": tenant,
            "rule_key": "handoff_black_hole" if alert_kind == "shipment" else "carrier_errors",
            "severity": "critical",
            "state": "open" if change == "opened" else change,
            "shipment_id": shipment,
            "carrier": "usps",
            "lane": "CN-US",
            "status": "in_transit",
            "substatus": "arrived_destination_country",
            "threshold_s": 172800.0,
            "threshold_source": "default",
            "last_event_at": T0,
            "silent_since": T0,
            "opened_at": T0 + timedelta(days=2),
            "changed_at": T0 + timedelta(days=2),
        }
    )


async def schedule(rt: Runtime, updates: Sequence[ShipmentUpdate]) -> int:
    async with transaction(rt.sessions) as s:
        return await handlers.schedule_updates(s, updates, datetime.now(UTC))


@asynccontextmanager
async def running_sender(rt: Runtime) -> AsyncIterator[Sender]:
    sender = Sender(rt.settings, rt.sessions)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        yield sender
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition"
) -> float:
    """Poll until ``check`` is true; returns the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        assert loop.time() - started < timeout, f"{what} not reached within {timeout} s"
        await asyncio.sleep(0.05)
    return loop.time() - started


async def deliveries(rt: Runtime, endpoint_id: uuid.UUID) -> list[WebhookDelivery]:
    async with rt.sessions() as s:
        stmt = (
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id)
        )
        return list(await s.scalars(stmt))


async def attempts(rt: Runtime, delivery_id: int) -> list[WebhookAttempt]:
    async with rt.sessions() as s:
        stmt = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
        return list(await s.scalars(stmt))


async def endpoint(rt: Runtime, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    async with rt.sessions() as s:
        found = await s.get(WebhookEndpoint, endpoint_id)
        assert found is not None
        return found


async def all_settled(rt: Runtime, endpoint_id: uuid.UUID, status: str = "succeeded") -> bool:
    rows = await deliveries(rt, endpoint_id)
    return bool(rows) and all(d.status == status for d in rows)

"""Helpers for the operator API tests: tenants with operator keys, shipments and alert rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.alerts.models import OPEN, SHIPMENT, Alert
from services.cli.app import create_api_app
from services.cli.runtime import Runtime
from services.timeline import repository as timeline
from services.timeline.models import Leg, Shipment
from shared.auth import create_api_key, create_tenant
from shared.db import transaction, utcnow

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    operator: str  # a key with the operator scope
    merchant: str  # a key without it

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.operator)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def client(rt: Runtime) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_api_app(rt))
    return httpx.AsyncClient(transport=transport, base_url="http://api")


async def new_tenant(rt: Runtime, name: str) -> Tenant:
    async with transaction(rt.sessions) as s:
        tenant = await create_tenant(s, name)
        _, operator = await create_api_key(s, tenant.id, ("operator",))
        _, merchant = await create_api_key(s, tenant.id, ("merchant",))
    return Tenant(tenant.id, operator, merchant)


async def new_shipment(
    rt: Runtime, tenant_id: uuid.UUID, number: str, carrier: str = "dhl"
) -> uuid.UUID:
    async with transaction(rt.sessions) as s:
        shipment = Shipment(
            tenant_id=tenant_id,
            carrier=carrier,
            tracking_number=number,
            merchant_reference=f"ORDER-{number}",
            status="in_transit",
            module_status={},
        )
        leg = Leg(carrier=carrier, tracking_number=number, position=0, opened_by="registration")
        await timeline.add_shipment(s, shipment, [leg])
        return shipment.id


async def new_alert(rt: Runtime, tenant_id: uuid.UUID | None, **values: Any) -> Alert:
    """An alert row as the scan writes one; ``values`` override the defaults."""
    now = utcnow()
    opened = values.pop("opened_at", now)
    row: dict[str, Any] = {
        "tenant_id": tenant_id,
        "kind": SHIPMENT,
        "rule_key": "in_transit",
        "severity": "warning",
        "state": OPEN,
        "shipment_id": uuid.uuid4(),
        "carrier": "dhl",
        "lane": "CN-US",
        "module": "international",
        "status": "in_transit",
        "threshold_s": 7 * 86400.0,
        "threshold_source": "default",
        "last_event_at": opened - timedelta(days=8),
        "silent_since": opened - timedelta(days=8),
        "opened_at": opened,
        "updated_at": values.pop("updated_at", opened),
        **values,
    }
    async with transaction(rt.sessions) as s:
        alert = Alert(**row)
        s.add(alert)
        await s.flush()
    return alert


async def touch(rt: Runtime, alert_id: uuid.UUID, **values: Any) -> None:
    """Change an alert the way the scan does (its ``updated_at`` moves on)."""
    async with transaction(rt.sessions) as s:
        alert = await s.get(Alert, alert_id)
        assert alert is not None
        for k, v in {"updated_at": utcnow(), **values}.items():
            setattr(alert, k, v)

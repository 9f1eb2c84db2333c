"""The HTTP API process: every service's router behind one error renderer."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.api import router as alerts_router
from services.alerts.page import router as ops_page_router
from services.carriers.webhooks import router as carrier_webhooks_router
from services.cli.runtime import Runtime
from services.merchants.api import bulk_router
from services.merchants.api import router as merchants_router
from services.merchants.handlers import Registered, RegisterRow
from services.merchants.schemas import BulkRow
from services.timeline.api import router as timeline_router
from services.timeline.handlers import RegisterShipment, register_shipment
from services.timeline.page import router as tracking_page_router
from services.webhooks.api import router as webhooks_router
from shared.http import (
    RateLimiter,
    install_body_limit,
    install_error_handlers,
    install_key_rate_limit,
    problem,
)
from shared.schema import TOPIC_SHIPMENT_UPDATES
from shared.settings import Settings


def create_api_app(rt: Runtime) -> FastAPI:
    app = FastAPI(
        title="Throughline",
        version="0.1.0",
        description=(
            "One end-to-end timeline for every cross-border parcel, across origin, international "
            "and destination logistics, whichever carriers carry it."
        ),
    )
    app.state.settings = rt.settings
    app.state.sessions = rt.sessions
    app.state.relay = rt.relay
    app.state.bus = rt.bus
    app.state.shutdown = asyncio.Event()  # set by serve(): long-lived streams end with the server
    app.state.public_limiter = RateLimiter(rt.settings.public_rate_per_minute)
    install_error_handlers(app)
    install_body_limit(app, rt.settings.max_body_bytes)
    install_key_rate_limit(
        app, rt.settings.merchant_rate_per_minute, rt.settings.merchant_rate_burst
    )
    app.include_router(bulk_router(timeline_registration(rt.settings)))
    app.include_router(timeline_router)
    app.include_router(tracking_page_router)
    app.include_router(merchants_router)
    app.include_router(webhooks_router)
    app.include_router(carrier_webhooks_router())
    app.include_router(alerts_router)
    app.include_router(ops_page_router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Readiness: the database answers."""
        try:
            async with rt.engine.connect() as conn:
                await conn.execute(text("select 1"))
        except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
            return problem(503, "Not ready", f"database unavailable: {type(exc).__name__}")
        return JSONResponse({"status": "ready"})

    return app


def timeline_registration(settings: Settings) -> RegisterRow:
    """Bulk registration reuses the timeline's one registration use case, wired here."""
    topic = settings.topic(TOPIC_SHIPMENT_UPDATES)

    async def register(session: AsyncSession, tenant_id: uuid.UUID, row: BulkRow) -> Registered:
        cmd = RegisterShipment(
            tenant_id=tenant_id,
            tracking_number=row.tracking_number,
            carrier=row.carrier,
            merchant_reference=row.merchant_reference,
            origin_country=row.origin_country,
            destination_country=row.destination_country,
        )
        shipment, created = await register_shipment(session, cmd, topic=topic)
        return Registered(shipment.id, shipment.carrier, shipment.tracking_number, created)

    return register

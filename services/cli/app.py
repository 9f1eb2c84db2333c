"""The HTTP API process: every service's router behind one error renderer."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.alerts.api import router as alerts_router
from services.alerts.page import router as ops_page_router
from services.carriers.webhooks import router as carrier_webhooks_router
from services.cli.runtime import Runtime
from services.merchants.api import bulk_router
from services.merchants.api import router as merchants_router
from services.merchants.handlers import Registered, RegisterRow
from services.merchants.schemas import BulkRow
from services.timeline.api import install_tracking_fast_path
from services.timeline.api import router as timeline_router
from services.timeline.handlers import RegisterShipment, register_shipment
from services.timeline.page import router as tracking_page_router
from services.webhooks.api import router as webhooks_router
from shared import metrics
from shared.http import (
    PROBLEM,
    RateLimiter,
    install_body_limit,
    install_error_handlers,
    install_key_rate_limit,
    problem,
)
from shared.schema import TOPIC_SHIPMENT_UPDATES
from shared.settings import Settings

READY_TIMEOUT_S = 2.0


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
    install_tracking_fast_path(app)
    install_body_limit(app, rt.settings.max_body_bytes)
    install_request_metrics(app)
    install_problem_documents(app)
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
        """Readiness: the database answers within two seconds."""

        async def ping() -> None:
            async with rt.engine.connect() as conn:
                await conn.execute(text("select 1"))

        try:
            # A partitioned network never answers: readiness says so instead of hanging.
            await asyncio.wait_for(ping(), READY_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
            return problem(503, "Not ready", f"database unavailable: {type(exc).__name__}")
        return JSONResponse({"status": "ready"})

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus_metrics() -> Response:
        """Prometheus metrics of this process, in the text exposition format."""
        await metrics.refresh_open_alerts(rt.engine)
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return app


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_ERRORS = {
    "401": "no API key, or one that is unknown, malformed or revoked",
    "403": "the API key lacks the scope this operation needs",
    "404": "no such resource for this tenant",
    "413": "the request body is over the size limit",
    "422": "the request is invalid; `errors` says where",
    "429": "rate limited; `Retry-After` says when to come back",
}


def install_problem_documents(app: FastAPI) -> None:
    """Document the errors every operation can answer, as the problem+json they are.

    The error handlers answer every 4xx as ``application/problem+json``; FastAPI's generated
    document only knows its own 422 shape. Authenticated operations may answer 401, 403 and
    429; operations on a path with a parameter 404; operations with a body 413.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = generate()
        doc.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem_content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, item in doc.get("paths", {}).items():
            for op in item.values():
                responses = op.setdefault("responses", {})
                wanted = {"422"} if op.get("parameters") or op.get("requestBody") else set()
                if op.get("security"):
                    wanted |= {"401", "403", "429"}
                if "{" in path:
                    wanted.add("404")
                if op.get("requestBody"):
                    wanted.add("413")
                for code in wanted:
                    responses.setdefault(code, {"description": _ERRORS[code]})
                for code, response in responses.items():
                    if code.startswith("4"):
                        response["content"] = problem_content
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def install_request_metrics(app: FastAPI) -> None:
    """Count and time every answer by route template (never the raw path: numbers are many)."""
    app.add_middleware(_RequestMetrics)


class _RequestMetrics:
    """Plain ASGI (no per-request task group, stream or ``Request``, unlike ``@app.middleware``):
    a request costs one wrapped ``send`` and the two metric updates.

    The route template is read from the scope after the app has answered (the router puts the
    matched route there); an exception that escapes the app counts as a 500 and goes on up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Labelled children, made once per (method, route[, status]): ``labels()`` costs a lock
        # and a dict lookup over tuples of strings each call.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.monotonic() - started
            method: str = scope["method"]
            # The router (or ``TrackingFastPath``, standing in for it) puts the route in the scope.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            counter = self._counters.get((method, route, status))
            if counter is None:
                counter = metrics.HTTP_REQUESTS.labels(method, route, str(status))
                if len(self._counters) < 10_000:
                    self._counters[(method, route, status)] = counter
            timer = self._timers.get((method, route))
            if timer is None:
                timer = metrics.HTTP_SECONDS.labels(method, route)
                if len(self._timers) < 10_000:
                    self._timers[(method, route)] = timer
            counter.inc()
            timer.observe(elapsed)


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

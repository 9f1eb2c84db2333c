"""Carrier sandbox: the DHL Shipment Tracking – Unified API, playing scripted journeys.

``GET /track/shipments?trackingNumber=..`` behaves like DHL's (``DHL-API-Key`` header, RFC 7807
problem documents with real status codes, events newest first with offset-less local times). A
journey's events appear as its accelerated clock passes them: journey time runs ``speed`` times
faster than real time from the moment the journey was started; event timestamps are the start
instant plus the step offsets, so they run ahead of the wall clock by the same factor.

Control API for the demo, the tests and the benchmarks:

- ``POST /_sim/journeys`` ``{tracking_number, journey, speed?}`` → 201; restarts a running one.
- ``GET /_sim/journeys`` → ``{"journeys": [...], "available": [journey names]}``.
- ``POST /_sim/faults`` ``{carrier: "dhl", mode: "5xx"|"429"|"slow"|"garbage"|"none", count?,
  duration? (real seconds), retry_after_s?, delay_s?}``: without count and duration the fault
  lasts until ``mode: "none"``.
- ``GET /healthz``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, FastAPI, Header, HTTPException, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field

from services.simulator.journeys import JOURNEYS, render_shipment
from services.simulator.state import Clock, Fault, FaultMode, SimulatorState, utcnow
from shared.settings import Settings

NOT_FOUND_TITLE = "No shipment with given tracking number found."
GARBAGE_BODY = b'{"shipments": [{"id": "\x00\xff<html><body>502 Bad Gateway'

__all__ = ["create_app", "NOT_FOUND_TITLE"]


class StartJourney(BaseModel):
    tracking_number: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
    journey: str
    speed: float | None = Field(default=None, gt=0)
    started_at: AwareDatetime | None = Field(
        default=None, description="resume a journey started earlier (same timestamps, same ids)"
    )


class FaultRequest(BaseModel):
    carrier: Literal["dhl"]
    mode: FaultMode
    count: int | None = Field(default=None, ge=1)
    duration: float | None = Field(default=None, gt=0, description="real seconds")
    retry_after_s: int = Field(default=1, ge=0)
    delay_s: float = Field(default=2.0, ge=0, le=120)


def create_app(settings: Settings, clock: Clock = utcnow) -> FastAPI:
    """The simulator app; ``clock`` returns the current aware UTC time (inject a fake in tests)."""
    state = SimulatorState(settings.simulator_speed, clock)
    app = FastAPI(title="Throughline carrier simulator", docs_url=None, redoc_url=None)
    app.state.simulator = state
    app.include_router(_dhl_router(state, settings.dhl_api_key))
    app.include_router(_control_router(state))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def problem(
    status: int,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"title": title, "status": status, "detail": detail}
    if instance is not None:
        body["instance"] = instance
    return Response(
        orjson.dumps(body),
        status_code=status,
        headers=headers,
        media_type="application/problem+json",
    )


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _dhl_router(state: SimulatorState, api_key: str) -> APIRouter:
    router = APIRouter()

    @router.get("/track/shipments")
    async def track_shipments(
        tracking_number: Annotated[str | None, Query(alias="trackingNumber")] = None,
        service: str | None = None,
        dhl_api_key: Annotated[str | None, Header(alias="DHL-API-Key")] = None,
    ) -> Response:
        fault = state.take_fault("dhl")
        if fault is not None:
            early = await _apply_fault(fault)
            if early is not None:
                return early
        if dhl_api_key != api_key:
            return problem(401, "Unauthorized", "Unauthorized for given resource.")
        if not tracking_number:
            return problem(400, "Bad Request", "trackingNumber is required.")
        return _answer(state, tracking_number, service)

    return router


async def _apply_fault(fault: Fault) -> Response | None:
    """The response the fault imposes, or None to answer normally (after a delay for ``slow``)."""
    if fault.mode == "5xx":
        return problem(503, "Service Unavailable", "The service is temporarily unavailable.")
    if fault.mode == "429":
        return problem(
            429,
            "Too Many Requests",
            "Too many requests within defined time period.",
            headers={"Retry-After": str(fault.retry_after_s)},
        )
    if fault.mode == "garbage":
        return Response(GARBAGE_BODY, media_type="application/json")
    if fault.mode == "slow":
        await asyncio.sleep(fault.delay_s)
    return None


def _answer(state: SimulatorState, tracking_number: str, service: str | None) -> Response:
    instance = "/track/shipments?" + urlencode({"trackingNumber": tracking_number})
    running = state.journeys.get(tracking_number)
    shipment = None
    if running is not None and service in (None, running.journey.service):
        elapsed = running.elapsed(state.clock())
        shipment = render_shipment(tracking_number, running.journey, running.stamp_origin, elapsed)
    if shipment is None:
        return problem(404, NOT_FOUND_TITLE, NOT_FOUND_TITLE, instance)
    other = urlencode({"trackingNumber": tracking_number, "service": "freight"})
    return _json(
        {"shipments": [shipment], "possibleAdditionalShipmentsUrl": [f"/track/shipments?{other}"]}
    )


def _control_router(state: SimulatorState) -> APIRouter:
    router = APIRouter(prefix="/_sim")

    @router.post("/journeys", status_code=201)
    async def start_journey(body: StartJourney) -> dict[str, Any]:
        if body.journey not in JOURNEYS:
            raise HTTPException(422, f"unknown journey {body.journey!r}; known: {sorted(JOURNEYS)}")
        running = state.start(body.tracking_number, body.journey, body.speed, body.started_at)
        return running.describe(state.clock())

    @router.get("/journeys")
    async def list_journeys() -> dict[str, Any]:
        now = state.clock()
        return {
            "journeys": [r.describe(now) for r in state.journeys.values()],
            "available": sorted(JOURNEYS),
        }

    @router.post("/faults")
    async def inject_fault(body: FaultRequest) -> dict[str, Any]:
        fault = state.set_fault(
            body.carrier,
            body.mode,
            count=body.count,
            duration=body.duration,
            retry_after_s=body.retry_after_s,
            delay_s=body.delay_s,
        )
        return {"carrier": body.carrier, **fault.describe()}

    return router

"""The carrier simulator: every carrier sandbox on one port, playing scripted journeys.

DHL's Shipment Tracking – Unified API (``GET /track/shipments?trackingNumber=..``, ``DHL-API-Key``
header, RFC 7807 problem documents with real status codes, events newest first with offset-less
local times) plays the DHL journeys of ``journeys``. The other fourteen sandboxes
(``services.simulator.carriers.<carrier>``) each serve their carrier's real paths, auth and answer
shapes from one shared ``ScriptState``, into which the multi-carrier itineraries of
``itineraries`` install their legs. Their paths do not overlap, so all of them share the port:

    dhl             /track/shipments
    upu             /IPSAPIService/TrackAndTraceService.svc/rest/Mailitems
    china-post      /partner/api/public/p/track/query/{lang}/{number}
    usps            /oauth2/v3/token, /tracking/v3/tracking/{number}
    royal-mail      /mailpieces/v2/{mailPieceId}/events
    la-poste        /suivi/v2/idships/{ids}
    australia-post  /shipping/v1/track
    canada-post     /vis/track/pin/{pin}/detail
    ups             /security/v1/oauth/token, /api/track/v1/details/{inquiryNumber}
    fedex           /oauth/token, /track/v1/trackingnumbers
    4px             /router/api/service
    yanwen          /api/tracking
    yunexpress      /api/Tracking/GetTrackInfo
    cainiao         /global/detail.json
    sf-express      /std/service

Every journey runs on an accelerated clock: journey time runs ``speed`` times faster than real
time from the moment it was started, and timestamps are laid out so the journey ends at its real
start, so every revealed event is already in the past. The sandboxes accept the credentials the
poller is configured with (the same settings, defaulting to the demo values). The control API is
in ``control``; ``GET /healthz`` answers ``{"status": "ok"}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import ModuleType
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, FastAPI, Header, Query
from fastapi.responses import Response

from services.simulator.carriers import ScriptState
from services.simulator.carriers import australia_post as australia_post_sandbox
from services.simulator.carriers import cainiao as cainiao_sandbox
from services.simulator.carriers import canada_post as canada_post_sandbox
from services.simulator.carriers import china_post as china_post_sandbox
from services.simulator.carriers import fedex as fedex_sandbox
from services.simulator.carriers import fourpx as fourpx_sandbox
from services.simulator.carriers import la_poste as la_poste_sandbox
from services.simulator.carriers import royal_mail as royal_mail_sandbox
from services.simulator.carriers import sf_express as sf_express_sandbox
from services.simulator.carriers import ups as ups_sandbox
from services.simulator.carriers import upu as upu_sandbox
from services.simulator.carriers import usps as usps_sandbox
from services.simulator.carriers import yanwen as yanwen_sandbox
from services.simulator.carriers import yunexpress as yunexpress_sandbox
from services.simulator.control import control_router
from services.simulator.itineraries import ITINERARIES
from services.simulator.journeys import render_shipment
from services.simulator.multileg import MultiLegJourneys
from services.simulator.state import Clock, Fault, SimulatorState, utcnow
from shared.settings import Settings

NOT_FOUND_TITLE = "No shipment with given tracking number found."
GARBAGE_BODY = b'{"shipments": [{"id": "\x00\xff<html><body>502 Bad Gateway'

# Every sandbox but DHL's, by carrier id; each module has ``router(state)`` and ``CARRIER``.
SANDBOXES: dict[str, ModuleType] = {
    m.CARRIER: m
    for m in (
        upu_sandbox, china_post_sandbox, usps_sandbox, royal_mail_sandbox, la_poste_sandbox,
        australia_post_sandbox, canada_post_sandbox, ups_sandbox, fedex_sandbox, fourpx_sandbox,
        yanwen_sandbox, yunexpress_sandbox, cainiao_sandbox, sf_express_sandbox,
    )
}  # fmt: skip

__all__ = ["NOT_FOUND_TITLE", "SANDBOXES", "create_app", "sandbox_credentials"]


def create_app(settings: Settings, clock: Clock = utcnow) -> FastAPI:
    """The simulator app; ``clock`` returns the current aware UTC time (inject a fake in tests)."""
    state = SimulatorState(settings.simulator_speed, clock)
    scripts = ScriptState(clock=clock, credentials=sandbox_credentials(settings))
    itineraries = MultiLegJourneys(ITINERARIES, scripts)
    app = FastAPI(title="Throughline carrier simulator", docs_url=None, redoc_url=None)
    app.state.simulator = state
    app.state.scripts = scripts
    app.state.itineraries = itineraries
    app.include_router(_dhl_router(state, settings.dhl_api_key))
    for sandbox in SANDBOXES.values():
        app.include_router(sandbox.router(scripts))
    app.include_router(control_router(state, itineraries, SANDBOXES.keys()))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def sandbox_credentials(settings: Settings) -> dict[str, Mapping[str, str]]:
    """The credentials each sandbox accepts: the ones the poller is configured with, read from the
    same settings (``<carrier>_<key>``, e.g. ``ups_client_id``) with the sandbox's demo value as
    the fallback."""
    credentials: dict[str, Mapping[str, str]] = {}
    for carrier, sandbox in SANDBOXES.items():
        defaults: Mapping[str, str] = getattr(sandbox, "DEFAULT_CREDENTIALS", {})
        prefix = "fourpx" if carrier == "4px" else carrier.replace("-", "_")
        credentials[carrier] = {
            key: getattr(settings, f"{prefix}_{key}", None) or value
            for key, value in defaults.items()
        }
    return credentials


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

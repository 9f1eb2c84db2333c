"""The timeline HTTP API: shipment registration (merchant) and end-to-end tracking (public)."""

from __future__ import annotations

import inspect
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.timeline import reads, repository
from services.timeline.handlers import AddLeg, RegisterShipment, add_leg, register_shipment
from services.timeline.schemas import LegIn, LegOut, ShipmentIn, ShipmentOut, TrackingOut
from services.timeline.views import leg_out, shipment_out
from shared.auth import Principal
from shared.errors import NotFound, ThroughlineError
from shared.http import SessionDep, problem, require_scope
from shared.numbers import normalise
from shared.outbox import OutboxRelay

router = APIRouter()
Merchant = Annotated[Principal, Depends(require_scope("merchant"))]


def _base_url(request: Request) -> str:
    configured: str = request.app.state.settings.public_base_url
    return configured.rstrip("/") or str(request.base_url).rstrip("/")


@router.post(
    "/v1/shipments",
    status_code=201,
    response_model=ShipmentOut,
    tags=["shipments"],
    responses={200: {"model": ShipmentOut, "description": "already registered (idempotent)"}},
)
async def create_shipment(
    body: ShipmentIn, principal: Merchant, session: SessionDep, request: Request, response: Response
) -> ShipmentOut:
    """Register a tracking number; idempotent by (tenant, carrier, number)."""
    settings = request.app.state.settings
    cmd = RegisterShipment(
        tenant_id=principal.tenant_id,
        tracking_number=body.tracking_number,
        carrier=body.carrier,
        merchant_reference=body.merchant_reference,
        origin_country=body.origin_country,
        destination_country=body.destination_country,
    )
    shipment, created = await register_shipment(
        session, cmd, topic=settings.topic("shipment.updates.v1")
    )
    if not created:
        response.status_code = 200
    await session.commit()
    relay: OutboxRelay = request.app.state.relay
    await relay.flush()  # publish after commit; a failure here is swept up later
    return shipment_out(shipment, _base_url(request))


@router.post(
    "/v1/shipments/{shipment_id}/legs",
    status_code=201,
    response_model=LegOut,
    tags=["shipments"],
    responses={
        200: {"model": LegOut, "description": "the shipment has this leg already (idempotent)"},
        404: {"description": "no such shipment for this tenant"},
    },
)
async def create_leg(
    shipment_id: uuid.UUID,
    body: LegIn,
    principal: Merchant,
    session: SessionDep,
    request: Request,
    response: Response,
) -> LegOut:
    """Link another carrier's number to the shipment (a manifest); it is polled from then on."""
    settings = request.app.state.settings
    cmd = AddLeg(
        tenant_id=principal.tenant_id,
        shipment_id=shipment_id,
        carrier=body.carrier,
        tracking_number=body.tracking_number,
        evidence=body.evidence,
    )
    leg, created = await add_leg(session, cmd, topic=settings.topic("shipment.updates.v1"))
    if not created:
        response.status_code = 200
    out = leg_out(leg)
    await session.commit()
    relay: OutboxRelay = request.app.state.relay
    await relay.flush()
    return out


@router.get("/v1/shipments/{shipment_id}", response_model=ShipmentOut, tags=["shipments"])
async def get_shipment(
    shipment_id: uuid.UUID, principal: Merchant, session: SessionDep, request: Request
) -> ShipmentOut:
    shipment = await repository.get_for_tenant(session, principal.tenant_id, shipment_id)
    if shipment is None:
        raise NotFound(f"no shipment {shipment_id}")
    return shipment_out(shipment, _base_url(request))


@router.get(
    "/v1/tracking/{tracking_number}",
    response_model=TrackingOut,
    tags=["tracking"],
    responses={404: {"description": "unknown number"}, 429: {"description": "rate limited"}},
)
async def track(tracking_number: str, request: Request) -> Response:
    """Public end-to-end timeline by any of the parcel's numbers, grouped by module."""
    return await _tracking(
        request.app, request.client.host if request.client else None, tracking_number
    )


async def _tracking(app: FastAPI, client: str | None, raw: str) -> Response:
    limiter = app.state.public_limiter
    wait = limiter.check(client or "unknown")
    if wait:
        resp = problem(
            429, "Too many requests", "slow down: the public tracking endpoint is rate limited"
        )
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    number = normalise(raw)
    body = await reads.tracking_json(app.state.sessions, number)
    if body is None:
        raise NotFound(f"no parcel with tracking number {number}")
    return Response(body, media_type="application/json")


_TRACKING = "/v1/tracking/"


@dataclass(frozen=True)
class _RouteTemplate:
    path: str


_TRACKING_ROUTE = _RouteTemplate(f"{_TRACKING}{{tracking_number}}")


class TrackingFastPath:
    """``GET /v1/tracking/{number}`` answered in front of the router (plain ASGI).

    The busiest public endpoint skips route matching over every API route, dependency solving and
    the endpoint wrappers; it runs the same ``_tracking`` as the routed ``track`` (which stays,
    for the OpenAPI document and any request this does not take), and errors are rendered by the
    app's own exception handler, so the answers are the same. Anything but a plain GET of one
    path segment goes on to the app.
    """

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            raw = path[len(_TRACKING) :]
            if path.startswith(_TRACKING) and raw and "/" not in raw:
                # The route this stands in for, as the router would have set it: request metrics
                # label answers by the route's template.
                scope["route"] = _TRACKING_ROUTE
                client = scope.get("client")
                try:
                    response = await _tracking(self.api, client[0] if client else None, raw)
                except ThroughlineError as exc:
                    handler = self.api.exception_handlers[ThroughlineError]
                    rendered = handler(Request(scope, receive), exc)
                    response = await rendered if inspect.isawaitable(rendered) else rendered
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_tracking_fast_path(app: FastAPI) -> None:
    app.add_middleware(TrackingFastPath, api=app)

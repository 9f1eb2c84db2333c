"""The webhooks HTTP API: endpoints, secrets, test events, the delivery log and replays.

Everything is scoped to the API key's tenant: another tenant's endpoint or delivery is a 404.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from services.webhooks import endpoints, repository
from services.webhooks.events import EVENT_TYPES
from services.webhooks.handlers import Policy
from services.webhooks.models import DELIVERY_STATUSES, FAILED, SUCCEEDED
from services.webhooks.schemas import (
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    EndpointCreated,
    EndpointIn,
    EndpointList,
    EndpointOut,
    EndpointPatch,
    EventTypeOut,
    ReplayOut,
    ReplayRangeIn,
    RotateIn,
    SecretOut,
    TestIn,
    decode_cursor,
    encode_cursor,
)
from shared.auth import Principal
from shared.db import utcnow
from shared.errors import InvalidInput, NotFound
from shared.http import SessionDep, require_scope

# Delivery ids are 64-bit database keys: a larger number is no delivery, not a server error.
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1)]

router = APIRouter(prefix="/v1", tags=["webhooks"])
Merchant = Annotated[Principal, Depends(require_scope("merchant"))]
_404: dict[int | str, dict[str, Any]] = {404: {"description": "no such endpoint for this tenant"}}


def _policy(request: Request) -> Policy:
    return Policy.from_settings(request.app.state.settings)


@router.get("/webhook-event-types", response_model=list[EventTypeOut])
async def list_event_types(_: Merchant) -> list[EventTypeOut]:
    """The event types an endpoint can subscribe to."""
    return [EventTypeOut(type=t, description=d) for t, d in EVENT_TYPES.items()]


@router.post("/webhook-endpoints", status_code=201, response_model=EndpointCreated)
async def create_endpoint(
    body: EndpointIn, principal: Merchant, session: SessionDep, request: Request
) -> EndpointCreated:
    """Register a URL. The URL must be public (no private, loopback or link-local addresses)."""
    endpoint = await endpoints.create_endpoint(
        session,
        principal.tenant_id,
        _policy(request),
        url=body.url,
        description=body.description,
        event_types=body.event_types,
        enabled=body.enabled,
        secret=body.secret,
    )
    return EndpointCreated(**EndpointOut.of(endpoint).model_dump(), secret=endpoint.secret)


@router.get("/webhook-endpoints", response_model=EndpointList)
async def list_endpoints(principal: Merchant, session: SessionDep) -> EndpointList:
    endpoints = await repository.list_endpoints(session, principal.tenant_id)
    return EndpointList(data=[EndpointOut.of(e) for e in endpoints])


@router.get("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut, responses=_404)
async def get_endpoint(
    endpoint_id: uuid.UUID, principal: Merchant, session: SessionDep
) -> EndpointOut:
    return EndpointOut.of(await endpoints.get_endpoint(session, principal.tenant_id, endpoint_id))


@router.patch("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut, responses=_404)
async def update_endpoint(
    endpoint_id: uuid.UUID,
    body: EndpointPatch,
    principal: Merchant,
    session: SessionDep,
    request: Request,
) -> EndpointOut:
    """Change the URL, description, filter, or enable / disable the endpoint."""
    endpoint = await endpoints.get_endpoint(session, principal.tenant_id, endpoint_id)
    changes = body.model_dump(exclude_unset=True)
    if any(changes.get(k, "") is None for k in ("url", "description", "event_types", "enabled")):
        raise InvalidInput("fields may be left out, not set to null")
    endpoint = await endpoints.update_endpoint(
        session, endpoint, _policy(request), changes, utcnow()
    )
    return EndpointOut.of(endpoint)


@router.delete(
    "/webhook-endpoints/{endpoint_id}", status_code=204, response_class=Response, responses=_404
)
async def delete_endpoint(endpoint_id: uuid.UUID, principal: Merchant, session: SessionDep) -> None:
    """Delete the endpoint with its deliveries and their attempts."""
    endpoint = await endpoints.get_endpoint(session, principal.tenant_id, endpoint_id)
    await repository.delete_endpoint(session, endpoint)


@router.get("/webhook-endpoints/{endpoint_id}/secret", response_model=SecretOut, responses=_404)
async def get_secret(endpoint_id: uuid.UUID, principal: Merchant, session: SessionDep) -> SecretOut:
    endpoint = await endpoints.get_endpoint(session, principal.tenant_id, endpoint_id)
    return SecretOut(
        secret=endpoint.secret, previous_secret_expires_at=endpoint.previous_secret_expires_at
    )


@router.post(
    "/webhook-endpoints/{endpoint_id}/secret/rotate", response_model=SecretOut, responses=_404
)
async def rotate_secret(
    endpoint_id: uuid.UUID,
    principal: Merchant,
    session: SessionDep,
    request: Request,
    body: RotateIn | None = None,
) -> SecretOut:
    """A new secret; both are sent (two signatures) until ``previous_secret_expires_at``."""
    endpoint = await endpoints.get_endpoint(session, principal.tenant_id, endpoint_id)
    secret = body.secret if body else None
    endpoint = await endpoints.rotate_secret(session, endpoint, _policy(request), utcnow(), secret)
    return SecretOut(
        secret=endpoint.secret, previous_secret_expires_at=endpoint.previous_secret_expires_at
    )


@router.post(
    "/webhook-endpoints/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    responses=_404,
)
async def send_test(
    endpoint_id: uuid.UUID, principal: Merchant, session: SessionDep, body: TestIn | None = None
) -> DeliveryOut:
    """Queue a sample event (``"test": true`` in its data) to this endpoint only."""
    endpoint = await endpoints.get_endpoint(session, principal.tenant_id, endpoint_id)
    event_type = body.event_type if body else TestIn().event_type
    delivery = await endpoints.send_test(session, endpoint, event_type, utcnow())
    return DeliveryOut.of(delivery)


@router.post(
    "/webhook-endpoints/{endpoint_id}/replay",
    status_code=202,
    response_model=ReplayOut,
    responses=_404,
)
async def replay_range(
    endpoint_id: uuid.UUID, body: ReplayRangeIn, principal: Merchant, session: SessionDep
) -> ReplayOut:
    """Send this endpoint's deliveries created in [since, until) again, with a fresh schedule."""
    endpoint = await endpoints.get_endpoint(session, principal.tenant_id, endpoint_id)
    statuses = (FAILED,) if body.status == "failed" else (FAILED, SUCCEEDED)
    n = await endpoints.replay_range(session, endpoint, body.since, body.until, statuses, utcnow())
    return ReplayOut(replayed=n)


@router.get("/webhook-deliveries", response_model=DeliveryPage)
async def list_deliveries(
    principal: Merchant,
    session: SessionDep,
    endpoint_id: uuid.UUID | None = None,
    status: Annotated[str | None, Query(description=" | ".join(DELIVERY_STATUSES))] = None,
    event_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPage:
    """The delivery log, newest first, with cursor pagination."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidInput(f"status: one of {', '.join(DELIVERY_STATUSES)}")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.utcoffset() is None:
            raise InvalidInput(f"{name}: give a time zone, e.g. 2024-03-01T08:00:00Z")
    f = repository.DeliveryFilter(endpoint_id, status, event_type, since, until)
    before = decode_cursor(cursor) if cursor else None
    rows = await repository.list_deliveries(
        session, principal.tenant_id, f, before=before, limit=limit + 1
    )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else None
    return DeliveryPage(data=[DeliveryOut.of(d) for d in page], next_cursor=next_cursor)


@router.get("/webhook-deliveries/{delivery_id}", response_model=DeliveryDetail)
async def get_delivery(
    delivery_id: DeliveryId, principal: Merchant, session: SessionDep
) -> DeliveryDetail:
    """One delivery with its payload and every attempt."""
    delivery = await repository.get_delivery(session, principal.tenant_id, delivery_id)
    if delivery is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    event = (await repository.events_by_id(session, [delivery.event_id]))[delivery.event_id]
    attempts = await repository.attempts_of(session, delivery.id)
    return DeliveryDetail(
        **DeliveryOut.of(delivery).model_dump(),
        payload=orjson.loads(event.body),
        attempts=[AttemptOut.of(a) for a in attempts],
    )


@router.post(
    "/webhook-deliveries/{delivery_id}/replay", status_code=202, response_model=DeliveryOut
)
async def replay_delivery(
    delivery_id: DeliveryId, principal: Merchant, session: SessionDep
) -> DeliveryOut:
    """Send one delivery again now (same ``webhook-id``: the receiver sees the same event)."""
    delivery = await endpoints.replay_delivery(session, principal.tenant_id, delivery_id, utcnow())
    return DeliveryOut.of(delivery)

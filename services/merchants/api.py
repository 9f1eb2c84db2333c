"""The merchant account API: API keys (list, create, rotate, revoke) and bulk registration.

Keys are shown once and stored hashed (``shared.auth``); everything is scoped to the key's tenant.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from services.merchants import handlers, repository
from services.merchants.handlers import RegisterRow
from services.merchants.schemas import (
    BulkIn,
    BulkOut,
    KeyCreated,
    KeyIn,
    KeyList,
    KeyOut,
    RotateKeyIn,
)
from shared.auth import Principal
from shared.db import utcnow
from shared.http import SessionDep, require_scope
from shared.outbox import OutboxRelay

log = logging.getLogger("throughline.merchants")
Merchant = Annotated[Principal, Depends(require_scope("merchant"))]
router = APIRouter(prefix="/v1", tags=["api keys"])


@router.get("/keys", response_model=KeyList)
async def list_keys(principal: Merchant, session: SessionDep) -> KeyList:
    """The tenant's keys (never the keys themselves: only their public prefix)."""
    now = utcnow()
    keys = await repository.list_keys(session, principal.tenant_id)
    return KeyList(data=[KeyOut.of(k, now, principal.key_id) for k in keys])


@router.post("/keys", status_code=201, response_model=KeyCreated)
async def create_key(
    principal: Merchant, session: SessionDep, body: KeyIn | None = None
) -> KeyCreated:
    """Another key for this tenant, with at most the scopes of the key making the request."""
    scopes = body.scopes if body else KeyIn().scopes
    key, secret = await handlers.create_key(session, principal, scopes)
    return KeyCreated(**KeyOut.of(key, utcnow(), principal.key_id).model_dump(), key=secret)


@router.post("/keys/{key_id}/rotate", status_code=201, response_model=KeyCreated)
async def rotate_key(
    key_id: uuid.UUID, principal: Merchant, session: SessionDep, body: RotateKeyIn | None = None
) -> KeyCreated:
    """A new key with the same scopes; the old one works for ``expires_in_s`` more seconds."""
    grace = body.expires_in_s if body else 0
    now = utcnow()
    key, secret = await handlers.rotate_key(session, principal, key_id, grace, now)
    return KeyCreated(**KeyOut.of(key, now, principal.key_id).model_dump(), key=secret)


@router.delete("/keys/{key_id}", status_code=204, response_class=Response)
async def revoke_key(key_id: uuid.UUID, principal: Merchant, session: SessionDep) -> None:
    """Revoke a key at once (409 for the tenant's last active key)."""
    await handlers.revoke_key(session, principal.tenant_id, key_id, utcnow())


def bulk_router(register: RegisterRow) -> APIRouter:
    """``POST /v1/shipments/bulk``, registering each row with ``register``."""
    bulk = APIRouter(prefix="/v1", tags=["shipments"])

    @bulk.post("/shipments/bulk", response_model=BulkOut)
    async def register_bulk(
        body: BulkIn, principal: Merchant, session: SessionDep, request: Request
    ) -> BulkOut:
        """Register up to 1,000 shipments; each row answers created, existing or error.

        Idempotent per row by (tenant, carrier, number), so a retried request is safe.
        """
        results = await handlers.register_rows(
            session, principal.tenant_id, body.shipments, register
        )
        await session.commit()
        relay: OutboxRelay = request.app.state.relay
        try:
            await relay.flush()  # publish after commit
        except Exception as exc:  # noqa: BLE001 - the rows stay in the outbox for the sweeper
            log.warning("publishing registrations deferred", extra={"error": repr(exc)})
        return BulkOut(
            created=sum(r.status == "created" for r in results),
            existing=sum(r.status == "existing" for r in results),
            errors=sum(r.status == "error" for r in results),
            results=results,
        )

    return bulk

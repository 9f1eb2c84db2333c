"""All SQL of the webhooks service. Functions take the session and only flush."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.webhooks.events import NewEvent
from services.webhooks.models import (
    PENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookShipmentState,
    signing_secrets,
)

D = WebhookDelivery
_CHUNK = 500  # rows per statement, under every driver's bind-parameter limit


def _insert(session: AsyncSession, table: Any) -> Any:
    module = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    return module.insert(table)


# --- endpoints ---------------------------------------------------------------------------------


async def add_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint | None:
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id
    )
    return (await session.scalars(stmt)).first()


async def list_endpoints(session: AsyncSession, tenant_id: uuid.UUID) -> list[WebhookEndpoint]:
    stmt = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list(await session.scalars(stmt))


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    await session.delete(endpoint)
    await session.flush()


async def enabled_endpoints(
    session: AsyncSession, tenant_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookEndpoint]]:
    ids = list(set(tenant_ids))
    out: dict[uuid.UUID, list[WebhookEndpoint]] = {t: [] for t in ids}
    if not ids:
        return out
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id.in_(ids), WebhookEndpoint.enabled.is_(True)
    )
    for endpoint in await session.scalars(stmt):
        out[endpoint.tenant_id].append(endpoint)
    return out


async def endpoints_by_id(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, WebhookEndpoint]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(wanted)))
    return {e.id: e for e in rows}


# --- events and deliveries ---------------------------------------------------------------------


async def insert_events(session: AsyncSession, events: Sequence[NewEvent]) -> set[uuid.UUID]:
    """Insert events, skipping ids already stored; returns the ids that were new."""
    unique = {e.id: e for e in events}
    rows = [
        {
            "id": e.id,
            "tenant_id": e.tenant_id,
            "type": e.type,
            "shipment_id": e.shipment_id,
            "occurred_at": e.occurred_at,
            "body": e.body,
        }
        for e in unique.values()
    ]
    new: set[uuid.UUID] = set()
    for start in range(0, len(rows), _CHUNK):
        stmt = _insert(session, WebhookEvent).values(rows[start : start + _CHUNK])
        stmt = stmt.on_conflict_do_nothing(index_elements=["id"]).returning(WebhookEvent.id)
        new.update((await session.execute(stmt)).scalars().all())
    return new


async def insert_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """One row per (endpoint, event); a pair that exists already is left alone."""
    made = 0
    for start in range(0, len(rows), _CHUNK):
        stmt = _insert(session, D).values(list(rows[start : start + _CHUNK]))
        stmt = stmt.on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        made += len((await session.execute(stmt.returning(D.id))).scalars().all())
    return made


async def events_by_id(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, WebhookEvent]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.scalars(select(WebhookEvent).where(WebhookEvent.id.in_(wanted)))
    return {e.id: e for e in rows}


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        D.status == PENDING,
        D.next_attempt_at <= now,
        or_(D.lease_until.is_(None), D.lease_until < now),
    )


@dataclass(frozen=True)
class Claimed:
    """A due delivery with what sending it takes: the URL, the signing secrets, the body."""

    delivery_id: int
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    url: str
    secrets: list[str]
    body: bytes


async def claim_due(
    session: AsyncSession,
    now: datetime,
    *,
    limit: int,
    exclude: Iterable[uuid.UUID] = (),
) -> list[Claimed]:
    """Due deliveries of enabled endpoints, oldest first, locked with ``FOR UPDATE SKIP LOCKED``
    (PostgreSQL; SQLite's one writer makes the claim atomic), in one statement. The caller leases
    the ones it takes before committing; the rest are released at commit. ``exclude``: endpoints
    that hold their share already, so one endpoint's backlog cannot fill the claims."""
    E, V = WebhookEndpoint, WebhookEvent
    stmt = (
        select(
            D.id,
            D.endpoint_id,
            D.event_id,
            E.url,
            E.secret,
            E.previous_secret,
            E.previous_secret_expires_at,
            V.body,
        )  # fmt: skip
        .join(E, E.id == D.endpoint_id)
        .join(V, V.id == D.event_id)
        .where(_due(now), E.enabled.is_(True))
        .order_by(D.next_attempt_at, D.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=D)
    )
    skip = list(exclude)
    if skip:
        stmt = stmt.where(D.endpoint_id.not_in(skip))
    return [
        Claimed(
            r.id,
            r.endpoint_id,
            r.event_id,
            r.url,
            signing_secrets(r.secret, r.previous_secret, r.previous_secret_expires_at, now),
            r.body,
        )  # fmt: skip
        for r in await session.execute(stmt)
    ]


async def lease(session: AsyncSession, ids: Sequence[int], until: datetime) -> None:
    if not ids:
        return
    await session.execute(update(D).where(D.id.in_(list(ids))).values(lease_until=until))


async def release(session: AsyncSession, ids: Sequence[int]) -> None:
    await session.execute(
        update(D).where(D.id.in_(list(ids)), D.status == PENDING).values(lease_until=None)
    )


@dataclass(frozen=True)
class DeliveryState:
    endpoint_id: uuid.UUID
    status: str
    attempt_count: int


async def delivery_states(session: AsyncSession, ids: Iterable[int]) -> dict[int, DeliveryState]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    stmt = select(D.id, D.endpoint_id, D.status, D.attempt_count).where(D.id.in_(wanted))
    return {row.id: DeliveryState(*row[1:]) for row in await session.execute(stmt)}


async def record_outcomes(
    session: AsyncSession,
    attempts: Sequence[dict[str, Any]],
    succeeded: Sequence[dict[str, Any]],
    others: Sequence[dict[str, Any]],
) -> None:
    """Attempt rows, then delivery updates, each one executemany (``b_id`` keys the delivery)."""
    table = cast(Table, D.__table__)
    by_id = update(table).where(table.c.id == bindparam("b_id"))
    if attempts:
        await session.execute(insert(cast(Table, WebhookAttempt.__table__)), list(attempts))
    if succeeded:
        rows = [{**r, "status": "succeeded", "next_attempt_at": None} for r in succeeded]
        await session.execute(by_id, rows)
    if others:
        await session.execute(by_id, list(others))


async def clear_failure_streaks(session: AsyncSession, endpoint_ids: Iterable[uuid.UUID]) -> None:
    ids = list(endpoint_ids)
    if ids:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(ids), WebhookEndpoint.failing_since.is_not(None))
            .values(failing_since=None)
        )


async def fail_pending(
    session: AsyncSession, endpoint_id: uuid.UUID, reason: str, now: datetime
) -> None:
    await session.execute(
        update(D)
        .where(D.endpoint_id == endpoint_id, D.status == PENDING)
        .values(status="failed", last_error=reason, lease_until=None, updated_at=now)
    )


# --- delivery log and replay -------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryFilter:
    endpoint_id: uuid.UUID | None = None
    status: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(tenant_id: uuid.UUID, f: DeliveryFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [D.tenant_id == tenant_id]
    if f.endpoint_id is not None:
        where.append(D.endpoint_id == f.endpoint_id)
    if f.status is not None:
        where.append(D.status == f.status)
    if f.event_type is not None:
        where.append(D.event_type == f.event_type)
    if f.since is not None:
        where.append(D.created_at >= f.since)
    if f.until is not None:
        where.append(D.created_at < f.until)
    return where


async def list_deliveries(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    f: DeliveryFilter,
    *,
    before: int | None,
    limit: int,
) -> list[WebhookDelivery]:
    """Newest first; ``before`` is the cursor (the last id of the previous page)."""
    where = _filtered(tenant_id, f)
    if before is not None:
        where.append(D.id < before)
    stmt = select(D).where(*where).order_by(D.id.desc()).limit(limit)
    return list(await session.scalars(stmt))


async def get_delivery(
    session: AsyncSession, tenant_id: uuid.UUID, delivery_id: int
) -> WebhookDelivery | None:
    stmt = select(D).where(D.id == delivery_id, D.tenant_id == tenant_id)
    return (await session.scalars(stmt)).first()


async def attempts_of(session: AsyncSession, delivery_id: int) -> list[WebhookAttempt]:
    stmt = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.id)
    )
    return list(await session.scalars(stmt))


async def requeue(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    f: DeliveryFilter,
    now: datetime,
    *,
    delivery_id: int | None = None,
    statuses: Sequence[str] = ("succeeded", "failed"),
) -> int:
    """Send settled deliveries again now, with a fresh retry schedule; returns how many."""
    where = [*_filtered(tenant_id, f), D.status.in_(list(statuses))]
    if delivery_id is not None:
        where.append(D.id == delivery_id)
    result = await session.execute(
        update(D)
        .where(*where)
        .values(
            status=PENDING, attempt_count=0, next_attempt_at=now, lease_until=None, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- what the service last saw of each shipment ------------------------------------------------


async def load_states(
    session: AsyncSession, shipment_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, WebhookShipmentState]:
    ids = list(set(shipment_ids))
    out: dict[uuid.UUID, WebhookShipmentState] = {}
    for start in range(0, len(ids), _CHUNK):
        stmt = select(WebhookShipmentState).where(
            WebhookShipmentState.shipment_id.in_(ids[start : start + _CHUNK])
        )
        out.update({s.shipment_id: s for s in await session.scalars(stmt)})
    return out


async def upsert_states(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or move forward; an older update never overwrites a newer state."""
    table = WebhookShipmentState.__table__
    for start in range(0, len(rows), _CHUNK):
        stmt = _insert(session, WebhookShipmentState).values(list(rows[start : start + _CHUNK]))
        stmt = stmt.on_conflict_do_update(
            index_elements=["shipment_id"],
            set_={"legs": stmt.excluded.legs, "status": stmt.excluded.status,
                  "substatus": stmt.excluded.substatus,
                  "last_event_at": stmt.excluded.last_event_at,
                  "updated_at": stmt.excluded.updated_at},
            where=table.c.updated_at <= stmt.excluded.updated_at,
        )  # fmt: skip
        await session.execute(stmt)

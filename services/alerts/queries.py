"""Reads the operator API needs beside ``repository``: the newest change (where a live stream
starts) and the registered numbers of alerted shipments (what a console shows and drills into).
Scoped like ``repository``: a tenant's own alerts only."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import String, Uuid, column, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.models import Alert
from services.alerts.stream import Cursor

# The timeline's table, read for one column: an alert keeps the shipment's id, a console shows its
# number. Read through a bare table clause so this service imports nothing of another.
_shipment = table("shipment", column("id", Uuid()), column("tracking_number", String()))


async def tracking_numbers(
    session: AsyncSession, shipment_ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    ids = {i for i in shipment_ids if i is not None}
    if not ids:
        return {}
    stmt = select(_shipment.c.id, _shipment.c.tracking_number).where(_shipment.c.id.in_(ids))
    rows = (await session.execute(stmt)).all()
    return {i: n for i, n in rows}


async def latest_change(session: AsyncSession, tenant_id: uuid.UUID) -> Cursor | None:
    stmt = (
        select(Alert.updated_at, Alert.id)
        .where(Alert.tenant_id == tenant_id)
        .order_by(Alert.updated_at.desc(), Alert.id.desc())
        .limit(1)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else Cursor(row[0], str(row[1]))

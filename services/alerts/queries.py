"""Reads the operator API needs beside ``repository``: the newest change (where a live stream
starts). Scoped like ``repository``: a tenant's own alerts and the carrier-wide ones. (The
registered number of an alerted shipment is on the alert itself: ``alert.tracking_number``.)"""

from __future__ import annotations

import uuid

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.models import CARRIER, Alert
from services.alerts.stream import Cursor


async def latest_change(session: AsyncSession, tenant_id: uuid.UUID) -> Cursor | None:
    """The newest change the tenant's operators can see: their own alerts and carrier-wide ones."""
    stmt = (
        select(Alert.updated_at, Alert.id)
        .where(
            or_(
                Alert.tenant_id == tenant_id,
                and_(Alert.tenant_id.is_(None), Alert.kind == CARRIER),
            )
        )
        .order_by(Alert.updated_at.desc(), Alert.id.desc())
        .limit(1)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else Cursor(row[0], str(row[1]))

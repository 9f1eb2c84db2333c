"""All SQL of the carriers service. Functions take the session and only flush."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.carriers.models import PollTarget, RawPayloadRow
from shared.db import utcnow


async def upsert_target(
    session: AsyncSession, carrier: str, number: str, status: str, now: datetime
) -> PollTarget:
    target = await session.get(PollTarget, (carrier, number))
    if target is None:
        target = PollTarget(
            carrier=carrier,
            tracking_number=number,
            status=status,
            next_poll_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(target)
    elif target.status != status:
        target.status = status
        target.updated_at = now
    if status == "delivered" and target.delivered_at is None:
        target.delivered_at = now
    elif status != "delivered":
        target.delivered_at = None
        target.active = True
    await session.flush()
    return target


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[PollTarget]:
    stmt = (
        select(PollTarget)
        .where(PollTarget.active.is_(True), PollTarget.next_poll_at <= now)
        .order_by(PollTarget.next_poll_at)
        .limit(limit)
    )
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.scalars(stmt)).all())


async def get_targets(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> list[PollTarget]:
    found = [await session.get(PollTarget, key) for key in keys]
    return [t for t in found if t is not None]


def add_raw(session: AsyncSession, row: RawPayloadRow) -> None:
    session.add(row)


async def raw_payloads(
    session: AsyncSession,
    carrier: str | None = None,
    limit: int = 1000,
    after: datetime | None = None,
) -> list[RawPayloadRow]:
    stmt = select(RawPayloadRow).order_by(RawPayloadRow.received_at, RawPayloadRow.id).limit(limit)
    if carrier:
        stmt = stmt.where(RawPayloadRow.carrier == carrier)
    if after:
        stmt = stmt.where(RawPayloadRow.received_at > after)
    return list((await session.scalars(stmt)).all())


def touch(target: PollTarget) -> None:
    target.updated_at = utcnow()

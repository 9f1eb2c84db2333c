"""All SQL of the carriers service. Functions take the session and only flush."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.carriers.models import CarrierPollStat, PollQuota, PollTarget, RawPayloadRow
from shared.db import utcnow

TERMINAL = ("delivered", "returned")


@dataclass(frozen=True)
class TargetState:
    """What the timeline says about one leg, for its poll target."""

    status: str
    substatus: str | None = None
    module: str | None = None
    detected: bool = False
    redetected_from: str | None = None


async def upsert_target(
    session: AsyncSession, carrier: str, number: str, state: TargetState, now: datetime
) -> PollTarget:
    target = await session.get(PollTarget, (carrier, number))
    if target is None:
        target = PollTarget(
            carrier=carrier,
            tracking_number=number,
            status=state.status,
            substatus=state.substatus,
            module=state.module,
            detected=state.detected,
            redetected_from=state.redetected_from,
            active=True,
            failures=0,
            not_found=0,
            next_poll_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(target)
    elif (target.status, target.substatus, target.module, target.detected) != (
        state.status,
        state.substatus,
        state.module,
        state.detected,
    ):
        target.status, target.substatus, target.module = state.status, state.substatus, state.module
        target.detected = state.detected
        target.updated_at = now
    if state.status in TERMINAL:
        if target.delivered_at is None:
            target.delivered_at = now
    elif target.redetected_to is None:  # a number moved to another carrier stays retired
        target.delivered_at = None
        target.active = True
    await session.flush()
    return target


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, carrier: str | None = None
) -> list[PollTarget]:
    if limit <= 0:
        return []
    stmt = (
        select(PollTarget)
        .where(PollTarget.active.is_(True), PollTarget.next_poll_at <= now)
        .order_by(PollTarget.next_poll_at)
        .limit(limit)
    )
    if carrier is not None:
        stmt = stmt.where(PollTarget.carrier == carrier)
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.scalars(stmt)).all())


async def get_targets(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> list[PollTarget]:
    found = [await session.get(PollTarget, key) for key in keys]
    return [t for t in found if t is not None]


async def targets_for_number(session: AsyncSession, number: str) -> list[PollTarget]:
    stmt = select(PollTarget).where(PollTarget.tracking_number == number)
    return list((await session.scalars(stmt)).all())


async def lock_quota(session: AsyncSession, carrier: str, now: datetime, burst: float) -> PollQuota:
    """The carrier's token bucket, locked for this transaction (created full on first use)."""
    dialect = session.bind.dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    await session.execute(
        module.insert(PollQuota)
        .values(carrier=carrier, tokens=burst, refilled_at=now)
        .on_conflict_do_nothing(index_elements=["carrier"])
    )
    stmt = (
        select(PollQuota)
        .where(PollQuota.carrier == carrier)
        .execution_options(populate_existing=True)
    )
    if dialect == "postgresql":
        stmt = stmt.with_for_update()
    quota = (await session.scalars(stmt)).one()
    return quota


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


async def raw_payload_page(
    session: AsyncSession,
    *,
    carrier: str | None,
    since: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[RawPayloadRow]:
    """Stored raw payloads in (received_at, id) order, resuming after the key ``after``."""
    stmt = select(RawPayloadRow).order_by(RawPayloadRow.received_at, RawPayloadRow.id).limit(limit)
    if carrier:
        stmt = stmt.where(RawPayloadRow.carrier == carrier)
    if since:
        stmt = stmt.where(RawPayloadRow.received_at >= since)
    if after:
        stmt = stmt.where(tuple_(RawPayloadRow.received_at, RawPayloadRow.id) > after)
    return list((await session.scalars(stmt)).all())


def touch(target: PollTarget) -> None:
    target.updated_at = utcnow()


async def record_poll_stats(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Add poll outcomes to their carrier's bucket; concurrent pollers add up, never overwrite."""
    if not rows:
        return
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    greatest = func.greatest if dialect is postgresql else func.max
    t = CarrierPollStat.__table__
    for row in sorted(rows, key=lambda r: str(r["carrier"])):  # one lock order for every poller
        stmt = dialect.insert(t).values(**row)
        new = stmt.excluded
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.c.carrier, t.c.bucket_at],
                set_={
                    "polls": t.c.polls + new.polls,
                    "errors": t.c.errors + new.errors,
                    "latency_ms_sum": t.c.latency_ms_sum + new.latency_ms_sum,
                    "latency_ms_max": greatest(t.c.latency_ms_max, new.latency_ms_max),
                    "last_error": func.coalesce(new.last_error, t.c.last_error),
                    "last_ok_at": func.coalesce(new.last_ok_at, t.c.last_ok_at),
                },
            )
        )

"""Transactional outbox: derived records are written in the same transaction as the change that
caused them, then published after commit by ``OutboxRelay``. A crash between the database commit and
the publish loses nothing: the rows are still there and the relay sends them (at least once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, LargeBinary, String, delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from shared.bus import Bus, OutRecord
from shared.bus.sql import SqlBus
from shared.db import Base, utcnow

log = logging.getLogger("throughline.outbox")

_Id = BigInteger().with_variant(Integer(), "sqlite")


class OutboxRecord(Base):
    __tablename__ = "outbox_record"

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(300))
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


def add_to_outbox(session: AsyncSession, topic: str, records: Sequence[OutRecord]) -> None:
    now = utcnow()
    session.add_all(
        OutboxRecord(topic=topic, key=r.key, value=r.value, created_at=now) for r in records
    )


_PG_INSERT = text(
    "INSERT INTO outbox_record (topic, key, value, created_at) "
    "SELECT CAST(:topic AS text), u.key, u.value, CAST(:created_at AS timestamptz) "
    "FROM unnest(CAST(:keys AS text[]), CAST(:values AS bytea[])) WITH ORDINALITY AS u(key, value, n) "
    "ORDER BY u.n"
)
# Claim, return and delete the oldest rows in one statement; the publish happens before commit.
# ``= ANY(ARRAY(...))`` runs the claim once and deletes by primary key (``IN (SELECT ...)`` may
# plan a sequential scan of a queue table full of dead rows).
_PG_CLAIM = (
    "DELETE FROM outbox_record WHERE id = ANY(ARRAY(SELECT id FROM outbox_record {where} "
    "ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)) RETURNING id, topic, key, value"
)
_PG_CLAIM_ALL = text(_PG_CLAIM.format(where=""))
_PG_CLAIM_OLD = text(_PG_CLAIM.format(where="WHERE created_at < :before"))


async def insert_outbox(session: AsyncSession, topic: str, records: Sequence[OutRecord]) -> None:
    """The same as ``add_to_outbox``, as one statement (no ORM objects), ids in list order."""
    if not records:
        return
    now = utcnow()
    if session.bind.dialect.name == "postgresql":
        params = {
            "topic": topic,
            "created_at": now,
            "keys": [r.key for r in records],
            "values": [r.value for r in records],
        }
        await session.execute(_PG_INSERT, params)
        return
    rows = [{"topic": topic, "key": r.key, "value": r.value, "created_at": now} for r in records]
    await session.execute(insert(OutboxRecord), rows)


async def _delete(session: AsyncSession, rows: Sequence[OutboxRecord]) -> None:
    if rows:
        await session.execute(delete(OutboxRecord).where(OutboxRecord.id.in_([r.id for r in rows])))


class OutboxRelay:
    def __init__(self, bus: Bus, sessions: async_sessionmaker[AsyncSession], *, batch: int = 1000):
        self._bus = bus
        self._sessions = sessions
        self._batch = batch
        self._lock = asyncio.Lock()
        self._appended = False
        self._staged = False

    async def stage(self, session: AsyncSession, topic: str, records: Sequence[OutRecord]) -> None:
        """Queue records for publishing once ``session``'s transaction commits (then ``flush``).

        When the bus is the SQL log in this very database, the records go straight into the log
        in the same transaction: it is as atomic as the outbox, without the second write.
        """
        bus = self._bus
        if isinstance(bus, SqlBus) and session.bind is bus.engine:
            await bus.append(session, topic, records)
            self._appended = True
        else:
            await insert_outbox(session, topic, records)
            self._staged = True

    async def after_commit(self) -> int:
        """What a ``stage`` caller runs after its commit: publish what it put in the outbox (none
        when the records went straight into the SQL log; rows of others wait for the sweeper)."""
        staged, self._staged = self._staged, False
        if self._appended and isinstance(self._bus, SqlBus):
            self._appended = False
            self._bus.notify()
        return await self.flush() if staged else 0

    async def flush(self, older_than: timedelta | None = None) -> int:
        """Publish pending rows in id order and delete them; returns how many were sent."""
        if self._appended and isinstance(self._bus, SqlBus):
            self._appended = False
            self._bus.notify()
        sent = 0
        async with self._lock:
            while True:
                n = await self._flush_once(older_than)
                sent += n
                if n < self._batch:
                    return sent

    async def _flush_once(self, older_than: timedelta | None) -> int:
        stmt = select(OutboxRecord).order_by(OutboxRecord.id).limit(self._batch)
        if older_than is not None:
            stmt = stmt.where(OutboxRecord.created_at < utcnow() - older_than)
        async with self._sessions() as session:
            if session.bind.dialect.name == "postgresql":
                params: dict[str, object] = {"limit": self._batch}
                if older_than is not None:
                    params["before"] = utcnow() - older_than
                claim = _PG_CLAIM_ALL if older_than is None else _PG_CLAIM_OLD
                async with session.begin():
                    claimed = sorted((await session.execute(claim, params)).all())
                    await self._publish(claimed)  # a failure rolls the delete back
                return len(claimed)
            # SQLite has one writer: holding a transaction while the SQL-log bus writes would wait
            # on ourselves. One process owns the file, and the relay's lock serialises flushes.
            async with session.begin():
                rows = (await session.scalars(stmt)).all()
            await self._publish(rows)
            async with session.begin():
                await _delete(session, rows)
            return len(rows)

    async def _publish(self, rows: Sequence[Any]) -> None:
        by_topic: dict[str, list[OutRecord]] = {}
        for row in rows:
            by_topic.setdefault(row.topic, []).append(OutRecord(row.key, row.value))
        for topic, records in by_topic.items():
            await self._bus.publish(topic, records)

    async def run(self, stop: asyncio.Event, interval_s: float = 2.0) -> None:
        """Sweep rows a crashed or failed publisher left behind."""
        while not stop.is_set():
            try:
                await self.flush(older_than=timedelta(seconds=interval_s))
            except Exception as exc:  # noqa: BLE001 - loop boundary; retried on the next sweep
                log.warning("outbox sweep failed", extra={"error": repr(exc)})
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                pass

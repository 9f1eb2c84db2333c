"""``SqlBus``: the embedded bus, an append-only log table plus consumer-group offsets.

It lives in the same database as everything else, so the embedded default needs no server and a
crash loses nothing: a record is durable once ``publish`` returns (committed), and a consumer resumes
from its last committed offset. Each topic has one partition; the offset is the log row id.

Meant for the embedded SQLite mode, where writes are serialised, so ids become visible in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, LargeBinary, String, func, insert, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from shared.bus import Consumer, Headers, InRecord, OutRecord, dlq_headers
from shared.db import Base, JsonType, session_factory, utcnow
from shared.errors import RetryableError
from shared.schema import dlq_topic

_Id = BigInteger().with_variant(Integer(), "sqlite")


class BusRecord(Base):
    __tablename__ = "bus_record"

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(200), index=True)
    key: Mapped[str] = mapped_column(String(300))
    value: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BusOffset(Base):
    __tablename__ = "bus_offset"

    group_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200), primary_key=True)
    next_id: Mapped[int] = mapped_column(_Id, default=0)


class SqlBus:
    def __init__(self, engine: AsyncEngine, *, poll_interval_s: float = 0.05):
        self.engine = engine
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._poll_interval_s = poll_interval_s
        self._published = asyncio.Event()

    async def create_topics(self, topics: Sequence[str]) -> None:
        """Topics need no setup in a log table."""

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> None:
        if not records:
            return
        try:
            async with self._sessions() as session, session.begin():
                await self.append(session, topic, records)
        except (OperationalError, DBAPIError) as exc:
            raise RetryableError(f"sql bus publish to {topic} failed: {exc}") from exc
        self.notify()

    async def append(self, session: AsyncSession, topic: str, records: Sequence[OutRecord]) -> None:
        """Publish within the caller's transaction on this bus's database: the records become
        visible when it commits, atomically with whatever else it wrote (call ``notify`` then)."""
        if not records:
            return
        now = utcnow()
        rows = [
            {
                "topic": topic,
                "key": r.key,
                "value": r.value,
                "headers": _dump(r.headers),
                "created_at": now,
            }
            for r in records
        ]
        await session.execute(insert(BusRecord), rows)

    def notify(self) -> None:
        """Wake consumers of this process waiting for records."""
        self._published.set()

    @asynccontextmanager
    async def consumer(self, group: str, topics: Sequence[str]) -> AsyncIterator[Consumer]:
        consumer = _SqlConsumer(self, group, list(topics))
        await consumer.load_positions()
        yield consumer

    async def close(self) -> None:
        """Nothing to release: the engine belongs to the caller."""

    async def wait_for_publish(self, timeout_s: float) -> None:
        self._published.clear()
        try:
            await asyncio.wait_for(self._published.wait(), timeout_s)
        except TimeoutError:
            pass

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions


class _SqlConsumer:
    def __init__(self, bus: SqlBus, group: str, topics: list[str]):
        self._bus = bus
        self._group = group
        self._topics = topics
        self._position: dict[str, int] = {}

    async def load_positions(self) -> None:
        async with self._bus.sessions() as session:
            rows = await session.execute(
                select(BusOffset.topic, BusOffset.next_id).where(
                    BusOffset.group_name == self._group, BusOffset.topic.in_(self._topics)
                )
            )
            committed = dict(rows.tuples().all())
        self._position = {t: committed.get(t, 0) for t in self._topics}

    async def poll(self, max_records: int, timeout_ms: int) -> list[InRecord]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        while True:
            records = await self._fetch(max_records)
            remaining = deadline - loop.time()
            if records or remaining <= 0:
                return records
            await self._bus.wait_for_publish(min(remaining, 0.5))

    async def _fetch(self, max_records: int) -> list[InRecord]:
        out: list[InRecord] = []
        try:
            async with self._bus.sessions() as session:
                for topic in self._topics:
                    if len(out) >= max_records:
                        break
                    out.extend(await self._fetch_topic(session, topic, max_records - len(out)))
        except (OperationalError, DBAPIError) as exc:
            raise RetryableError(f"sql bus fetch failed: {exc}") from exc
        return out

    async def _fetch_topic(self, session: AsyncSession, topic: str, limit: int) -> list[InRecord]:
        stmt = (
            select(BusRecord)
            .where(BusRecord.topic == topic, BusRecord.id >= self._position[topic])
            .order_by(BusRecord.id)
            .limit(limit)
        )
        rows = (await session.scalars(stmt)).all()
        if rows:
            self._position[topic] = rows[-1].id + 1
        return [
            InRecord(
                topic,
                0,
                r.id,
                r.key,
                r.value,
                _load(r.headers),
                int(r.created_at.timestamp() * 1000),
            )
            for r in rows
        ]

    async def lag(self) -> dict[tuple[str, int], int]:
        """Per topic (one partition): records in the log at or after the committed offset."""
        async with self._bus.sessions() as session:
            committed = dict(
                (
                    await session.execute(
                        select(BusOffset.topic, BusOffset.next_id).where(
                            BusOffset.group_name == self._group, BusOffset.topic.in_(self._topics)
                        )
                    )
                )
                .tuples()
                .all()
            )
            lags = {}
            for topic in self._topics:
                behind = await session.scalar(
                    select(func.count())
                    .select_from(BusRecord)
                    .where(BusRecord.topic == topic, BusRecord.id >= committed.get(topic, 0))
                )
                lags[(topic, 0)] = int(behind or 0)
        return lags

    async def commit(self, records: Sequence[InRecord]) -> None:
        next_ids: dict[str, int] = {}
        for r in records:
            next_ids[r.topic] = max(next_ids.get(r.topic, 0), r.offset + 1)
        if not next_ids:
            return
        try:
            async with self._bus.sessions() as session, session.begin():
                for topic, next_id in next_ids.items():
                    await _upsert_offset(session, self._group, topic, next_id)
        except (OperationalError, DBAPIError) as exc:
            raise RetryableError(f"sql bus offset commit failed: {exc}") from exc

    async def dead_letter(self, record: InRecord, reason: str, error: str) -> None:
        out = OutRecord(record.key or "", record.value, dlq_headers(record, reason, error))
        await self._bus.publish(dlq_topic(record.topic), [out])


async def _upsert_offset(session: AsyncSession, group: str, topic: str, next_id: int) -> None:
    row = await session.get(BusOffset, (group, topic))
    if row is None:
        session.add(BusOffset(group_name=group, topic=topic, next_id=next_id))
    elif next_id > row.next_id:
        row.next_id = next_id
    await session.flush()


def _dump(headers: Headers) -> list[list[str]]:
    return [[k, v.decode("latin-1")] for k, v in headers]


def _load(headers: list[Any] | None) -> Headers:
    return tuple((str(k), str(v).encode("latin-1")) for k, v in (headers or ()))

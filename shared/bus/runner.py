"""The consumer loop every service uses: poll → decode → handle (commits the DB) → publish → commit.

- Records that do not decode go to ``<topic>.dlq`` with the reason; the loop moves on.
- A batch whose handling fails with a non-transient error is retried one record at a time, so only the
  poison record goes to the DLQ.
- Transient failures (database or broker down) are retried in place, never skipped; after
  ``give_up_after_s`` of failing the loop raises so a supervisor restarts the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from shared import metrics
from shared.bus import Bus, Consumer, InRecord, OutRecord
from shared.errors import InvalidInput, RetryableError
from shared.schema import AnyMessage, TrackingEvent, decode

log = logging.getLogger("throughline.consumer")
T = TypeVar("T")

Message = AnyMessage
Decoded = tuple[InRecord, Message]
Outbox = list[tuple[str, OutRecord]]
Handler = Callable[[list[Decoded]], Awaitable[Outbox]]


@dataclass
class ConsumerStats:
    records: int = 0
    batches: int = 0
    dead_lettered: int = 0
    retries: int = 0
    dlq_reasons: dict[str, int] = field(default_factory=dict)


# SQLSTATE classes of a server that is away or busy, not of a bad record: connection exception
# (08), insufficient resources (53, e.g. too many connections), operator intervention (57: shut
# down, crashed, "the database system is starting up" while it replays its WAL); and the two
# conflicts that succeed when tried again (serialization failure, deadlock).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")
_TRANSIENT_SQLSTATES = ("40001", "40P01")


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, RetryableError | OSError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return _transient_sqlstate(exc)


def _transient_sqlstate(exc: BaseException) -> bool:
    """A network error or a server SQLSTATE, raised by asyncpg itself (a pool connect) or
    wrapped by SQLAlchemy."""
    for err in (exc, getattr(exc, "orig", None)):
        if isinstance(err, OSError | TimeoutError):  # a driver error wrapping the network's
            return True
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if isinstance(code, str) and (
            code[:2] in _TRANSIENT_SQLSTATE_CLASSES or code in _TRANSIENT_SQLSTATES
        ):
            return True
    return False


@dataclass
class ConsumerLoop:
    bus: Bus
    group: str
    topics: Sequence[str]
    handle: Handler
    batch_size: int = 500
    wait_ms: int = 200
    give_up_after_s: float = 600.0
    stats: ConsumerStats = field(default_factory=ConsumerStats)
    lag_every_s: float = 1.0  # how often the lag gauges are refreshed
    prefetch: bool = False  # fetch and decode the next batch while handling this one
    _batch: list[InRecord] = field(default_factory=list, init=False, repr=False)
    _lag_at: float = field(default=float("-inf"), init=False, repr=False)
    _lag_labels: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False)

    async def run(self, stop: asyncio.Event) -> None:
        async with self.bus.consumer(self.group, self.topics) as consumer:
            log.info("consumer started", extra={"group": self.group, "topics": list(self.topics)})
            ahead: asyncio.Task[_Fetched] | None = None
            try:
                while not stop.is_set():
                    if ahead is None:
                        fetched = await self._fetch(consumer)
                    else:
                        fetched, ahead = await ahead, None
                    if fetched[0]:
                        if self.prefetch:
                            # The next batch is fetched and decoded while this one waits on the
                            # database. Offsets are committed per batch, of that batch's records,
                            # after its transaction: a batch fetched ahead and never handled (a
                            # stop, a crash) is not committed, and is read again.
                            ahead = asyncio.create_task(self._fetch(consumer))
                        await self.process(consumer, *fetched)
                    await self._report_lag(consumer)
            finally:
                if ahead is not None:
                    ahead.cancel()
                    with contextlib.suppress(BaseException):
                        await ahead
            log.info("consumer stopped", extra={"group": self.group})

    async def _fetch(self, consumer: Consumer) -> _Fetched:
        records = await self._retrying(lambda: consumer.poll(self.batch_size, self.wait_ms))
        return records, [_decoded(record) for record in records]

    async def process(
        self,
        consumer: Consumer,
        records: list[InRecord],
        decoded: list[tuple[InRecord, Message | InvalidInput]] | None = None,
    ) -> None:
        """One batch, start to finish; the in-flight batch always completes before a stop."""
        started = asyncio.get_running_loop().time()
        self._batch = records
        good: list[Decoded] = []
        for record, message in decoded if decoded is not None else map(_decoded, records):
            if isinstance(message, InvalidInput):
                await self._dead_letter(consumer, record, "invalid_record", str(message))
            else:
                good.append((record, message))
        dead_before = self.stats.dead_lettered
        outbox = await self._handle(consumer, good) if good else []
        dead_in_handling = self.stats.dead_lettered - dead_before
        for topic, out in _group(outbox).items():
            await self._retrying(lambda t=topic, o=out: self.bus.publish(t, o))  # type: ignore[misc]
        await self._retrying(lambda: consumer.commit(records))
        self.stats.records += len(records)
        self.stats.batches += 1
        self._batch = []
        self._count(records, good, dead_in_handling, started)

    def _count(
        self, records: list[InRecord], good: list[Decoded], dead: int, started: float
    ) -> None:
        per_topic: dict[str, int] = {}
        for r in records:
            per_topic[r.topic] = per_topic.get(r.topic, 0) + 1
        for topic, n in per_topic.items():
            metrics.CONSUMER_RECORDS.labels(self.group, topic).inc(n)
        events = sum(1 for _, m in good if isinstance(m, TrackingEvent))
        if events:
            # Poison records are isolated one at a time: those dead-lettered were not stored.
            metrics.EVENTS_INGESTED.labels(self.group).inc(max(0, events - dead))
        elapsed = asyncio.get_running_loop().time() - started
        metrics.CONSUMER_BATCH_SECONDS.labels(self.group).observe(elapsed)
        log.debug(
            "batch committed",
            extra={"group": self.group, "records": len(records), **_span(records)},
        )

    async def _report_lag(self, consumer: Consumer) -> None:
        """Refresh the lag gauges at most every ``lag_every_s``; consumers without ``lag()`` skip."""
        now = asyncio.get_running_loop().time()
        lag_of = getattr(consumer, "lag", None)
        if lag_of is None or now - self._lag_at < self.lag_every_s:
            return
        self._lag_at = now
        try:
            lags: dict[tuple[str, int], int] = await asyncio.wait_for(lag_of(), 2)
        except Exception as exc:  # noqa: BLE001 - a gauge must never stop the loop
            log.debug("consumer lag not read", extra={"group": self.group, "error": repr(exc)})
            return
        labels = {(topic, str(partition)) for topic, partition in lags}
        for topic, gone in self._lag_labels - labels:  # partitions no longer ours
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(self.group, topic, gone)
        for (topic, partition), lag in lags.items():
            metrics.CONSUMER_LAG.labels(self.group, topic, str(partition)).set(lag)
        self._lag_labels = labels

    async def _handle(self, consumer: Consumer, batch: list[Decoded]) -> Outbox:
        try:
            return await self._retrying(lambda: self.handle(batch))
        except Exception as exc:  # noqa: BLE001 - loop boundary: isolate the poison record
            if is_transient(exc):
                raise
            if len(batch) == 1:
                record = batch[0][0]
                log.warning(
                    "record failed processing",  # the coordinates come from the record itself
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "key": record.key,
                        "error": repr(exc),
                    },
                )
                await self._dead_letter(consumer, record, "processing_failed", repr(exc))
                return []
        outbox: Outbox = []
        for item in batch:
            outbox.extend(await self._handle(consumer, [item]))
        return outbox

    async def _dead_letter(
        self, consumer: Consumer, record: InRecord, reason: str, error: str
    ) -> None:
        log.warning(
            "record sent to DLQ",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "key": record.key,
                "reason": reason,
                "error": error[:500],
            },
        )
        await self._retrying(lambda: consumer.dead_letter(record, reason, error))
        self.stats.dead_lettered += 1
        metrics.DLQ_RECORDS.labels(self.group, record.topic, reason).inc()
        self.stats.dlq_reasons[reason] = self.stats.dlq_reasons.get(reason, 0) + 1

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt = 0
        while True:
            try:
                return await call()
            except Exception as exc:
                if not is_transient(exc) or loop.time() - started > self.give_up_after_s:
                    raise
                attempt += 1
                self.stats.retries += 1
                metrics.CONSUMER_RETRIES.labels(self.group).inc()
                delay = min(5.0, 0.1 * 2**attempt) * (0.5 + random.random() / 2)
                log.warning(
                    "transient failure, retrying in place",
                    extra={
                        "group": self.group,
                        "attempt": attempt,
                        "error": repr(exc),
                        **_span(self._batch),
                    },
                )
                await asyncio.sleep(delay)


_Fetched = tuple[list[InRecord], list[tuple[InRecord, Message | InvalidInput]]]


def _decoded(record: InRecord) -> tuple[InRecord, Message | InvalidInput]:
    """A record and its message, or the reason it is none (for the DLQ)."""
    try:
        return record, decode(record.value)
    except InvalidInput as exc:
        return record, exc


def _span(records: Sequence[InRecord]) -> dict[str, object]:
    """Log coordinates of a batch: its topic/partition/offset, or the offset range per partition."""
    if not records:
        return {}
    if len(records) == 1:
        r = records[0]
        return {"topic": r.topic, "partition": r.partition, "offset": r.offset}
    ranges: dict[str, list[int]] = {}
    for r in records:
        span = ranges.setdefault(f"{r.topic}:{r.partition}", [r.offset, r.offset])
        span[0], span[1] = min(span[0], r.offset), max(span[1], r.offset)
    if len(ranges) == 1:
        r = records[0]
        low, high = next(iter(ranges.values()))
        return {"topic": r.topic, "partition": r.partition, "offset": low, "offset_last": high}
    return {"offsets": {k: f"{lo}-{hi}" for k, (lo, hi) in sorted(ranges.items())}}


def _group(outbox: Outbox) -> dict[str, list[OutRecord]]:
    grouped: dict[str, list[OutRecord]] = {}
    for topic, record in outbox:
        grouped.setdefault(topic, []).append(record)
    return grouped

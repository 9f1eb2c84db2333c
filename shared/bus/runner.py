"""The consumer loop every service uses: poll → decode → handle (commits the DB) → publish → commit.

- Records that do not decode go to ``<topic>.dlq`` with the reason; the loop moves on.
- A batch whose handling fails with a non-transient error is retried one record at a time, so only the
  poison record goes to the DLQ.
- Transient failures (database or broker down) are retried in place, never skipped; after
  ``give_up_after_s`` of failing the loop raises so a supervisor restarts the process.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from shared.bus import Bus, Consumer, InRecord, OutRecord
from shared.errors import InvalidInput, RetryableError
from shared.schema import AnyMessage, decode

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


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, RetryableError | OSError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


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

    async def run(self, stop: asyncio.Event) -> None:
        async with self.bus.consumer(self.group, self.topics) as consumer:
            log.info("consumer started", extra={"group": self.group, "topics": list(self.topics)})
            while not stop.is_set():
                records = await self._retrying(lambda: consumer.poll(self.batch_size, self.wait_ms))
                if records:
                    await self.process(consumer, records)
            log.info("consumer stopped", extra={"group": self.group})

    async def process(self, consumer: Consumer, records: list[InRecord]) -> None:
        """One batch, start to finish; the in-flight batch always completes before a stop."""
        good: list[Decoded] = []
        for record in records:
            try:
                good.append((record, decode(record.value)))
            except InvalidInput as exc:
                await self._dead_letter(consumer, record, "invalid_record", str(exc))
        outbox = await self._handle(consumer, good) if good else []
        for topic, out in _group(outbox).items():
            await self._retrying(lambda t=topic, o=out: self.bus.publish(t, o))  # type: ignore[misc]
        await self._retrying(lambda: consumer.commit(records))
        self.stats.records += len(records)
        self.stats.batches += 1

    async def _handle(self, consumer: Consumer, batch: list[Decoded]) -> Outbox:
        try:
            return await self._retrying(lambda: self.handle(batch))
        except Exception as exc:  # noqa: BLE001 - loop boundary: isolate the poison record
            if is_transient(exc):
                raise
            if len(batch) == 1:
                record = batch[0][0]
                log.warning(
                    "record failed processing",
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
                delay = min(5.0, 0.1 * 2**attempt) * (0.5 + random.random() / 2)
                log.warning(
                    "transient failure, retrying in place",
                    extra={"group": self.group, "attempt": attempt, "error": repr(exc)},
                )
                await asyncio.sleep(delay)


def _group(outbox: Outbox) -> dict[str, list[OutRecord]]:
    grouped: dict[str, list[OutRecord]] = {}
    for topic, record in outbox:
        grouped.setdefault(topic, []).append(record)
    return grouped

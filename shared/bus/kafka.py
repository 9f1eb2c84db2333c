"""``KafkaBus``: the scale-out bus on Apache Kafka through aiokafka."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from shared.bus import Consumer, InRecord, OutRecord, dlq_headers
from shared.errors import RetryableError
from shared.schema import dlq_topic

log = logging.getLogger("throughline.bus")
_TOPIC_ALREADY_EXISTS = 36


class KafkaBus:
    def __init__(
        self,
        bootstrap: str,
        *,
        partitions: int = 4,
        client_id: str = "throughline",
        group_prefix: str = "",
    ):
        self._bootstrap = bootstrap
        self._partitions = partitions
        self._client_id = client_id
        # Namespaces consumer groups like topics (tests, benchmarks): runs that share a broker
        # never join each other's groups, so one run's crash or rebalance cannot stall another.
        self._group_prefix = group_prefix
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _get_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    client_id=self._client_id,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=5,
                    max_batch_size=256 * 1024,
                    request_timeout_ms=30_000,
                )
                try:
                    await producer.start()
                except KafkaError as exc:
                    await producer.stop()
                    raise RetryableError(f"kafka producer cannot start: {exc!r}") from exc
                self._producer = producer
            return self._producer

    async def create_topics(self, topics: Sequence[str]) -> None:
        wanted = {name for topic in topics for name in (topic, dlq_topic(topic))}
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id=self._client_id)
        try:
            await admin.start()
            missing = wanted - set(await admin.list_topics())
            if missing:
                new = [NewTopic(t, self._partitions, 1) for t in sorted(missing)]
                response = await admin.create_topics(new)
                for topic_error in response.topic_errors:
                    code = topic_error[1]
                    if code not in (0, _TOPIC_ALREADY_EXISTS):
                        raise RetryableError(f"cannot create topic {topic_error[0]}: {topic_error}")
        except KafkaError as exc:
            raise RetryableError(f"kafka admin failed: {exc!r}") from exc
        finally:
            await admin.close()

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> None:
        if not records:
            return
        producer = await self._get_producer()
        try:
            # send() only enqueues into a batch; awaiting the futures together waits for acks=all.
            futures = [
                await producer.send(topic, r.value, key=r.key.encode(), headers=list(r.headers))
                for r in records
            ]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise RetryableError(f"kafka publish to {topic} failed: {exc!r}") from exc

    @asynccontextmanager
    async def consumer(self, group: str, topics: Sequence[str]) -> AsyncIterator[Consumer]:
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=f"{self._group_prefix}{group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=None,
            fetch_max_bytes=16 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise RetryableError(f"kafka consumer cannot start: {exc!r}") from exc
        try:
            yield _KafkaConsumer(consumer, self)
        finally:
            await consumer.stop()

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class _KafkaConsumer:
    def __init__(self, consumer: AIOKafkaConsumer, bus: KafkaBus):
        self._consumer = consumer
        self._bus = bus

    async def poll(self, max_records: int, timeout_ms: int) -> list[InRecord]:
        try:
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            raise RetryableError(f"kafka fetch failed: {exc!r}") from exc
        return [_to_record(m) for tp in sorted(batches, key=_tp_key) for m in batches[tp]]

    def assigned(self) -> set[tuple[str, int]]:
        """The (topic, partition) pairs this consumer owns in the current group generation."""
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    async def lag(self) -> dict[tuple[str, int], int]:
        """Per owned partition: the highwater (as of the last fetch) minus our position."""
        lags: dict[tuple[str, int], int] = {}
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:  # nothing fetched from this partition yet
                continue
            try:
                position = await self._consumer.position(tp)
            except (KafkaError, AssertionError):  # revoked meanwhile
                continue
            lags[(tp.topic, tp.partition)] = max(0, high - position)
        return lags

    async def commit(self, records: Sequence[InRecord]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        # A rebalance may have moved partitions away while the batch was being handled. Their
        # offsets can no longer be committed here (retrying would never succeed); the new owner
        # resumes from the last committed offset and replays the batch, which is a no-op.
        owned = self._consumer.assignment()
        kept = {tp: offset for tp, offset in offsets.items() if tp in owned}
        if len(kept) < len(offsets):
            _log_replay(sorted(set(offsets) - set(kept), key=_tp_key), "partitions revoked")
        if not kept:
            return
        try:
            await self._consumer.commit(kept)
        except (CommitFailedError, IllegalStateError) as exc:
            _log_replay(sorted(kept, key=_tp_key), repr(exc))  # the group rebalanced meanwhile
        except KafkaError as exc:
            raise RetryableError(f"kafka offset commit failed: {exc!r}") from exc

    async def dead_letter(self, record: InRecord, reason: str, error: str) -> None:
        out = OutRecord(record.key or "", record.value, dlq_headers(record, reason, error))
        await self._bus.publish(dlq_topic(record.topic), [out])


def _log_replay(partitions: list[TopicPartition], why: str) -> None:
    log.info(
        "offsets not committed after a rebalance; the partitions' owner replays the batch",
        extra={"partitions": [f"{tp.topic}:{tp.partition}" for tp in partitions], "why": why},
    )


def _tp_key(tp: TopicPartition) -> tuple[str, int]:
    return (tp.topic, tp.partition)


def _to_record(message: Any) -> InRecord:
    key = message.key.decode("utf-8", "replace") if message.key is not None else None
    headers = tuple((k, bytes(v or b"")) for k, v in (message.headers or ()))
    return InRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=key,
        value=message.value or b"",
        headers=headers,
        timestamp_ms=message.timestamp,
    )

"""One ``Bus`` interface with two implementations: ``KafkaBus`` (scale-out) and ``SqlBus`` (embedded).

Semantics, the same for both (DESIGN.md, "Delivery semantics"):

- ``publish`` returns once every record is durably accepted (Kafka: acks=all, idempotent producer;
  SQL log: committed).
- A consumer reads batches and commits offsets explicitly, after the caller's database commit; a crash
  before ``commit`` replays the batch.
- ``dead_letter`` sends a record that cannot be processed to ``<topic>.dlq`` with headers saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class OutRecord:
    key: str
    value: bytes
    headers: Headers = ()


@dataclass(frozen=True)
class InRecord:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: Headers = field(default=())
    timestamp_ms: int | None = None


class Consumer(Protocol):
    async def poll(self, max_records: int, timeout_ms: int) -> list[InRecord]:
        """Up to ``max_records`` records (possibly none after ``timeout_ms``)."""

    async def commit(self, records: Sequence[InRecord]) -> None:
        """Mark these records (and everything before them in their partitions) as processed."""

    async def dead_letter(self, record: InRecord, reason: str, error: str) -> None:
        """Publish ``record`` to ``<topic>.dlq`` with ``dlq-reason`` / ``dlq-error`` headers."""


class Bus(Protocol):
    async def create_topics(self, topics: Sequence[str]) -> None:
        """Create topics (and their ``.dlq`` twins) if missing; no auto-creation anywhere."""

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> None:
        """Publish keyed records; returns when all are durably accepted."""

    def consumer(self, group: str, topics: Sequence[str]) -> AbstractAsyncContextManager[Consumer]:
        """A consumer in ``group`` reading ``topics`` from the last committed offsets."""

    async def close(self) -> None: ...


def dlq_headers(record: InRecord, reason: str, error: str) -> Headers:
    return (
        *record.headers,
        ("dlq-reason", reason.encode()),
        ("dlq-error", error[:2000].encode("utf-8", "replace")),
        ("dlq-source-topic", record.topic.encode()),
        ("dlq-source-partition", str(record.partition).encode()),
        ("dlq-source-offset", str(record.offset).encode()),
    )


__all__ = ["Bus", "Consumer", "Headers", "InRecord", "OutRecord", "dlq_headers"]

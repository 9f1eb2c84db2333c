"""The poll loop: claim due numbers, ask the carrier, keep the raw answer, publish the events.

Order of effects per round: fetch → commit raw rows → publish raw and events → commit the schedule.
A crash anywhere before the schedule commit means the number is polled again, and the deterministic
event ids make the repeat harmless.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.carriers import repository
from services.carriers.adapters import ADAPTERS
from services.carriers.client import CarrierUnavailable, FetchResult, backoff_delay
from services.carriers.models import PollTarget, RawPayloadRow
from services.carriers.scheduler import is_finished, next_poll
from shared.bus import Bus, OutRecord
from shared.db import transaction, utcnow
from shared.schema import TOPIC_EVENTS, TOPIC_RAW, RawPayload, dlq_topic, encode
from shared.settings import Settings
from shared.taxonomy import Source

log = logging.getLogger("throughline.poller")


class Fetcher(Protocol):
    async def fetch(self, tracking_number: str) -> FetchResult: ...


@dataclass
class Outcome:
    key: tuple[str, str]
    result: FetchResult | None = None
    error: str | None = None
    retry_after: float | None = None
    not_found: bool = False
    raw_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass
class PollerStats:
    polls: int = 0
    errors: int = 0
    events: int = 0
    not_found: int = 0
    dead_lettered: int = 0


class Poller:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        fetchers: Mapping[str, Fetcher],
        concurrency: int = 8,
    ):
        self._settings = settings
        self._bus = bus
        self._sessions = sessions
        self._fetchers = fetchers
        self._limit = asyncio.Semaphore(concurrency)
        self.stats = PollerStats()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                busy = await self.poll_once()
            except Exception as exc:  # noqa: BLE001 - loop boundary: log and go on
                log.exception("poll round failed", extra={"error": repr(exc)})
                busy = 0
            if busy < self._settings.poll_batch:
                try:
                    await asyncio.wait_for(stop.wait(), self._settings.poll_tick_s)
                except TimeoutError:
                    pass

    async def poll_once(self) -> int:
        now = utcnow()
        async with transaction(self._sessions) as session:
            due = await repository.claim_due(session, now, self._settings.poll_batch)
            keys = [(t.carrier, t.tracking_number) for t in due if t.carrier in self._fetchers]
            # Lease: push the schedule out so another poller does not take the same work meanwhile.
            for target in due:
                target.next_poll_at = now + timedelta(minutes=5)
        if not keys:
            return 0
        outcomes = await asyncio.gather(*(self._fetch(key) for key in keys))
        await self._store_raw(outcomes)
        await self._publish(outcomes)
        await self._reschedule(outcomes)
        return len(keys)

    async def _fetch(self, key: tuple[str, str]) -> Outcome:
        async with self._limit:
            try:
                result = await self._fetchers[key[0]].fetch(key[1])
            except CarrierUnavailable as exc:
                return Outcome(key, error=str(exc), retry_after=exc.retry_after)
            except Exception as exc:  # noqa: BLE001 - one number's failure is data, not a crash
                return Outcome(key, error=repr(exc))
        self.stats.polls += 1
        return Outcome(key, result=result)

    async def _store_raw(self, outcomes: list[Outcome]) -> None:
        async with transaction(self._sessions) as session:
            for o in outcomes:
                if o.result is None:
                    continue
                repository.add_raw(
                    session,
                    RawPayloadRow(
                        id=o.raw_id,
                        carrier=o.key[0],
                        tracking_numbers=[o.key[1]],
                        source=Source.POLL.value,
                        http_status=o.result.status_code,
                        content_type=o.result.content_type,
                        body=o.result.body,
                        received_at=utcnow(),
                    ),
                )

    async def _publish(self, outcomes: list[Outcome]) -> None:
        raw: list[OutRecord] = []
        events: list[OutRecord] = []
        dead: list[OutRecord] = []
        for o in outcomes:
            if o.result is None:
                continue
            key = f"{o.key[0]}:{o.key[1]}"
            raw.append(OutRecord(key, encode(_raw_message(o))))
            parsed = ADAPTERS[o.key[0]].parse(
                o.result.body,
                requested=o.key[1],
                raw_ref=str(o.raw_id),
                http_status=o.result.status_code,
            )
            events.extend(
                OutRecord(f"{e.carrier}:{e.tracking_number}", encode(e)) for e in parsed.events
            )
            self.stats.events += len(parsed.events)
            o.error = "; ".join(f"{e.code}: {e.message}" for e in parsed.errors) or None
            o.not_found = not parsed.events and any(e.code == "not_found" for e in parsed.errors)
            malformed = [e.message for e in parsed.errors if e.code == "malformed"]
            if malformed:
                dead.append(
                    OutRecord(
                        key,
                        raw[-1].value,
                        (
                            ("dlq-reason", b"malformed_payload"),
                            ("dlq-error", "; ".join(malformed)[:2000].encode()),
                        ),
                    )
                )
        await self._bus.publish(self._settings.topic(TOPIC_RAW), raw)
        await self._bus.publish(self._settings.topic(TOPIC_EVENTS), events)
        # A payload we cannot read is kept where an operator will see it, with the reason.
        await self._bus.publish(dlq_topic(self._settings.topic(TOPIC_RAW)), dead)
        self.stats.dead_lettered += len(dead)

    async def _reschedule(self, outcomes: list[Outcome]) -> None:
        now = utcnow()
        s = self._settings
        async with transaction(self._sessions) as session:
            targets = {
                (t.carrier, t.tracking_number): t
                for t in await repository.get_targets(session, [o.key for o in outcomes])
            }
            for o in outcomes:
                target = targets.get(o.key)
                if target is not None:
                    _apply(target, o, now, s, self.stats)


def _apply(target: PollTarget, o: Outcome, now: datetime, s: Settings, stats: PollerStats) -> None:
    target.last_polled_at = now
    target.last_error = o.error
    target.updated_at = now
    if o.result is None:  # carrier unavailable: back off, honouring Retry-After
        stats.errors += 1
        target.failures += 1
        delay = backoff_delay(
            target.failures, base=s.poll_min_interval_s, retry_after=o.retry_after
        )
        target.next_poll_at = now + timedelta(seconds=delay)
        return
    target.failures = 0
    if o.not_found:
        stats.not_found += 1
        target.not_found += 1
    else:
        target.not_found = 0
    target.next_poll_at = next_poll(target, now, s.poll_interval_s, s.poll_min_interval_s)
    if is_finished(target, now, s.poll_delivered_grace_s):
        target.active = False


def _raw_message(o: Outcome) -> RawPayload:
    assert o.result is not None
    return RawPayload(
        raw_id=o.raw_id,
        carrier=o.key[0],
        tracking_numbers=[o.key[1]],
        received_at=utcnow(),
        source=Source.POLL,
        http_status=o.result.status_code,
        content_type=o.result.content_type,
        body=o.result.body.decode("utf-8", "replace"),
    )

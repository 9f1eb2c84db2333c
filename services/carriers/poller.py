"""The poll loop: claim due numbers, ask the carrier, keep the raw answer, publish the events.

Order of effects per round: claim (lease the numbers, take tokens from each carrier's bucket) →
fetch → commit raw rows → publish raw and events → commit the schedule. All schedule state lives in
``poll_target`` and ``poll_quota`` rows, so a restart resumes where it stopped: a crash before the
schedule commit means the number is polled again once its lease runs out, and the deterministic
event ids make the repeat harmless; the lease keeps other pollers from polling it meanwhile.

A number a carrier keeps calling "not found" moves to the next candidate carrier of its format
(``scheduler.next_candidate``) when the carrier was only detected, never when the merchant, a
hand-off or the carrier itself named it; the old target records where it went.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
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
from services.carriers.repository import TargetState
from services.carriers.scheduler import (
    carrier_limits,
    grant,
    is_finished,
    next_candidate,
    next_poll,
    refill,
    throttled,
)
from shared import metrics
from shared.bus import Bus, OutRecord
from shared.bus.runner import is_transient
from shared.db import transaction, utcnow
from shared.schema import TOPIC_EVENTS, TOPIC_RAW, RawPayload, dlq_topic, encode
from shared.settings import Settings
from shared.taxonomy import Source

log = logging.getLogger("throughline.poller")
_RESCHEDULE_ATTEMPTS = 4

STAT_BUCKET_S = 10  # carrier_poll_stat granularity


class Fetcher(Protocol):
    async def fetch(self, tracking_number: str) -> FetchResult: ...


@dataclass
class Outcome:
    key: tuple[str, str]
    result: FetchResult | None = None
    error: str | None = None
    retry_after: float | None = None
    status_code: int | None = None
    not_found: bool = False
    raw_id: uuid.UUID = field(default_factory=uuid.uuid4)
    latency_ms: int = 0


@dataclass
class PollerStats:
    polls: int = 0
    errors: int = 0
    events: int = 0
    not_found: int = 0
    dead_lettered: int = 0
    redetected: int = 0


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
        # A carrier is polled only if its answers can be parsed.
        self._fetchers = {c: f for c, f in fetchers.items() if c in ADAPTERS}
        for carrier in sorted(set(fetchers) - set(self._fetchers)):
            log.warning("no adapter: carrier not polled", extra={"carrier": carrier})
        self._limits = carrier_limits(settings, self._fetchers)
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
        keys: list[tuple[str, str]] = []
        async with transaction(self._sessions) as session:
            for carrier in sorted(self._fetchers):  # one lock order for every poller
                due = await self._claim(session, carrier, now)
                keys.extend((t.carrier, t.tracking_number) for t in due)
        if not keys:
            return 0
        outcomes = await asyncio.gather(*(self._fetch(key) for key in keys))
        await self._store_raw(outcomes)
        await self._publish(outcomes)
        await self._reschedule(outcomes)
        return len(keys)

    async def _claim(self, session: AsyncSession, carrier: str, now: datetime) -> list[PollTarget]:
        """Due numbers of one carrier, as many as its batch and token bucket allow."""
        limits = self._limits[carrier]
        quota = await repository.lock_quota(session, carrier, now, limits.burst)
        tokens = refill(quota.tokens, quota.refilled_at, now, limits)
        due = await repository.claim_due(session, now, grant(tokens, limits), carrier)
        if due:  # refill is a pure function of the row: nothing taken, nothing to write
            quota.tokens, quota.refilled_at = tokens - len(due), now
        lease = timedelta(seconds=self._settings.poll_lease_s)
        for target in due:
            target.next_poll_at = now + lease
        return due

    async def _fetch(self, key: tuple[str, str]) -> Outcome:
        async with self._limit:
            started = time.monotonic()
            outcome = await self._ask(key, started)
            outcome.latency_ms = int((time.monotonic() - started) * 1000)
        return outcome

    async def _ask(self, key: tuple[str, str], started: float) -> Outcome:
        try:
            result = await self._fetchers[key[0]].fetch(key[1])
        except CarrierUnavailable as exc:
            _measure(key[0], started, "unavailable", metrics.poll_error_reason(exc.status_code))
            return Outcome(
                key, error=str(exc), retry_after=exc.retry_after, status_code=exc.status_code
            )
        except Exception as exc:  # noqa: BLE001 - one number's failure is data, not a crash
            _measure(key[0], started, "error", "other")
            return Outcome(key, error=repr(exc))
        _measure(key[0], started, "ok")
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
                metrics.CARRIER_DLQ.labels(o.key[0]).inc()
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
        """Write the outcomes in one transaction, tried again when the database is away or the
        transaction lost a deadlock (the timeline consumer schedules new legs' numbers in its own
        transactions): a lost reschedule would leave the numbers leased and unpolled."""
        for attempt in range(1, _RESCHEDULE_ATTEMPTS + 1):
            try:
                await self._reschedule_once(outcomes)
                return
            except Exception as exc:
                if attempt == _RESCHEDULE_ATTEMPTS or not is_transient(exc):
                    raise
                log.warning(
                    "reschedule failed; trying again",
                    extra={"attempt": attempt, "error": repr(exc)},
                )
                await asyncio.sleep(0.05 * attempt * (1 + random.random()))

    async def _reschedule_once(self, outcomes: list[Outcome]) -> None:
        now = utcnow()
        s = self._settings
        counted = PollerStats()  # added to the totals once the transaction committed
        async with transaction(self._sessions) as session:
            # Rows are read (and so locked and written) in key order, the same in every writer.
            keys = sorted({o.key for o in outcomes})
            targets = {
                (t.carrier, t.tracking_number): t
                for t in await repository.get_targets(session, keys)
            }
            for o in outcomes:
                target = targets.get(o.key)
                if target is None:
                    continue
                _apply(target, o, now, s, counted)
                if (
                    o.not_found
                    and target.detected
                    and target.redetected_to is None
                    and target.not_found >= s.poll_redetect_after
                ):
                    await self._redetect(session, target, now)
            await self._throttle(session, outcomes, now)
            await repository.record_poll_stats(session, poll_stat_rows(outcomes, now))
        self.stats.errors += counted.errors
        self.stats.not_found += counted.not_found

    async def _redetect(self, session: AsyncSession, target: PollTarget, now: datetime) -> None:
        number = target.tracking_number
        tried = {t.carrier for t in await repository.targets_for_number(session, number)}
        candidate = next_candidate(number, tried, self._fetchers)
        if candidate is None:
            return
        target.active = False
        target.redetected_to = candidate.carrier
        target.last_error = (
            f"not found {target.not_found} times; asking {candidate.carrier} instead "
            f"({candidate.reason})"
        )
        state = TargetState(
            status=target.status,
            substatus=target.substatus,
            module=target.module,
            detected=True,
            redetected_from=target.carrier,
        )
        await repository.upsert_target(session, candidate.carrier, number, state, now)
        self.stats.redetected += 1
        log.info(
            "carrier re-detected",
            extra={"number": number, "from": target.carrier, "to": candidate.carrier},
        )

    async def _throttle(
        self, session: AsyncSession, outcomes: list[Outcome], now: datetime
    ) -> None:
        """A 429 with Retry-After is about our key, not one number: pause the whole carrier."""
        pauses: dict[str, float] = {}
        for o in outcomes:
            if o.status_code == 429 and o.retry_after:
                pauses[o.key[0]] = max(pauses.get(o.key[0], 0.0), o.retry_after)
        for carrier, seconds in sorted(pauses.items()):
            limits = self._limits[carrier]
            quota = await repository.lock_quota(session, carrier, now, limits.burst)
            tokens = refill(quota.tokens, quota.refilled_at, now, limits)
            quota.tokens, quota.refilled_at = throttled(tokens, seconds, limits), now


def _measure(carrier: str, started: float, outcome: str, reason: str | None = None) -> None:
    metrics.CARRIER_POLL_SECONDS.labels(carrier).observe(time.monotonic() - started)
    metrics.CARRIER_POLLS.labels(carrier, outcome).inc()
    if reason is not None:
        metrics.CARRIER_POLL_ERRORS.labels(carrier, reason).inc()


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


@dataclass
class _PollStat:
    polls: int = 0
    errors: int = 0
    latency_ms_sum: int = 0
    latency_ms_max: int = 0
    last_error: str | None = None
    last_ok_at: datetime | None = None


def poll_stat_rows(outcomes: list[Outcome], now: datetime) -> list[dict[str, object]]:
    """Outcomes summed per carrier into the current bucket (carrier health, read by alerts)."""
    bucket = now.replace(second=now.second - now.second % STAT_BUCKET_S, microsecond=0)
    stats: dict[str, _PollStat] = {}
    for o in outcomes:
        stat = stats.setdefault(o.key[0], _PollStat())
        stat.polls += 1
        stat.latency_ms_sum += o.latency_ms
        stat.latency_ms_max = max(stat.latency_ms_max, o.latency_ms)
        if o.result is None:  # the carrier did not answer usably: an error of the carrier's
            stat.errors += 1
            stat.last_error = (o.error or "unavailable")[:500]
        else:
            stat.last_ok_at = now
    return [
        {"carrier": carrier, "bucket_at": bucket, **vars(stat)} for carrier, stat in stats.items()
    ]


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

"""The webhook sender: claims due deliveries, POSTs them, settles the outcomes in batches.

- Claims lock rows with ``FOR UPDATE SKIP LOCKED`` and lease them (``lease_until``) before the
  transaction ends, so any number of senders share the work and a crashed sender's rows come back
  when the lease runs out (at-least-once on the wire; receivers dedupe by ``webhook-id``).
- One slow or dead endpoint cannot delay another's deliveries: each endpoint has at most
  ``webhook_endpoint_concurrency`` requests in flight (per sender), out of a global pool of
  ``webhook_max_in_flight``. Claims run ahead of the sends (up to eight times the caps are held,
  in flight or ready), so a freed slot starts the next job at once instead of waiting for a claim;
  a claim skips endpoints that already hold their share.
- Outcomes are written by one writer task, many per transaction (attempt rows, next attempt time,
  endpoint failure streaks and disabling).
- On PostgreSQL a claim is one statement and so is a batch of successes (``claims.py``), on
  connections of the sender's own with ``synchronous_commit`` off: a crash may lose the last
  moments of leases and outcomes, which only means those deliveries are sent again (never lost).
  Ready jobs wait per endpoint; a heap of the endpoints below their cap, by oldest ready job,
  picks the next one to start.
- On stop, nothing new is claimed or started; requests in flight finish (bounded by the
  timeout), their outcomes are written, and the leases of jobs never started are released.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.webhooks import claims, repository, signing
from services.webhooks.client import WebhookClient
from services.webhooks.handlers import AttemptResult, Policy, settle
from shared import metrics
from shared.bus.runner import is_transient
from shared.db import transaction, utcnow
from shared.settings import Settings

log = logging.getLogger("throughline.webhooks")
T = TypeVar("T")
COALESCE_S = 0.005  # let a few completions gather before the next claim
HOLD = 8  # claimed ahead: up to eight times the caps, in flight or ready (4 starved the sends
# while a claim was on its way: BENCHMARKS.md, webhook sending)
SETTLE_EVERY_S = 0.02  # outcomes gather this long before they are written together
# Labelled metric children per outcome kind, made once (``labels()`` takes a lock each call).
_OUTCOME_METRICS: dict[str, tuple[Any, Any]] = {}


Job = repository.Claimed


@dataclass
class SenderStats:
    claimed: int = 0
    attempts: int = 0
    succeeded: int = 0
    settle_failures: int = 0
    in_flight_peak: int = 0
    per_endpoint_peak: dict[uuid.UUID, int] = field(default_factory=dict)


class Sender:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]):
        self._settings = settings
        self._sessions = sessions
        self._policy = Policy.from_settings(settings)
        self._max = settings.webhook_max_in_flight
        self._cap = settings.webhook_endpoint_concurrency
        # A held job may wait for HOLD - 1 timed-out rounds of its endpoint before it is sent: the
        # lease must outlast that, or another sender could take the job meanwhile.
        self._lease_s = max(settings.webhook_lease_s, HOLD * settings.webhook_timeout_s + 30)
        # Claimed jobs wait in _ready for a free slot, so a slot seldom waits for a claim: at most
        # HOLD times the caps are held (leased) at once, in flight or ready.
        # Ready jobs per endpoint, in claim order (``_seq``), and a heap of (oldest ready job,
        # endpoint) for endpoints below their cap: a freed slot finds its next job in O(log n).
        self._ready: dict[uuid.UUID, deque[tuple[int, Job]]] = {}
        self._eligible: list[tuple[int, uuid.UUID]] = []
        self._seq = 0
        self._held: dict[uuid.UUID, int] = {}
        self._in_flight: dict[uuid.UUID, int] = {}
        # Endpoints that answered 410 and are about to be disabled: not claimed meanwhile.
        self._gone: set[uuid.UUID] = set()
        # One long-lived worker per slot (``webhook_max_in_flight`` of them): a started job is
        # handed to an idle worker's future instead of costing a task of its own.
        self._idle: deque[asyncio.Future[Job | None]] = deque()
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._results: list[AttemptResult] = []
        self._have_results = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._client: WebhookClient | None = None
        engine = sessions.kw.get("bind")
        # PostgreSQL: claims and successes go through claims.py on plain connections of our own.
        self._pg_dsn = (
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            if engine is not None and engine.dialect.name == "postgresql"
            else None
        )
        self._pg_pool: Any = None
        self.stats = SenderStats()

    @property
    def in_flight(self) -> int:
        return sum(self._in_flight.values())

    async def run(self, stop: asyncio.Event) -> None:
        s = self._settings
        client = WebhookClient(
            timeout_s=s.webhook_timeout_s,
            max_in_flight=self._max,
            allow_loopback=s.webhook_allow_loopback,
            max_response_bytes=s.webhook_max_response_bytes,
        )
        async with client:
            self._client = client
            writing = asyncio.Event()
            writer = asyncio.create_task(self._write_results(writing))
            loop = asyncio.get_running_loop()
            for _ in range(self._max):
                idle: asyncio.Future[Job | None] = loop.create_future()
                self._idle.append(idle)
                self._workers.append(asyncio.create_task(self._worker(idle)))
            log.info("webhook sender started", extra={"max_in_flight": self._max})
            try:
                await self._claim_loop(stop)
            finally:
                unsent = [job.delivery_id for q in self._ready.values() for _, job in q]
                self._ready.clear()
                self._stopping = True
                while self._idle:  # busy workers see _stopping once their request is over
                    self._idle.popleft().set_result(None)
                await asyncio.gather(*self._workers, return_exceptions=True)
                self._workers.clear()
                writing.set()
                self._have_results.set()
                await writer
                await self._release(unsent)
                if self._pg_pool is not None:
                    await self._pg_pool.close()
            log.info("webhook sender stopped", extra={"attempts": self.stats.attempts})

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if await self._retrying(self._claim):
                continue  # the claim came back full: more may be due right now
            self._slot_freed.clear()
            await _first(
                stop.wait(), self._slot_freed.wait(), self._settings.webhook_poll_interval_s
            )
            await asyncio.sleep(COALESCE_S)

    async def _claim(self) -> bool:
        """Claim what is due within the caps and start it; True when the claim came back full."""
        room = HOLD * self._max - sum(self._held.values())
        if room <= 0:
            return False
        per_endpoint = HOLD * self._cap
        full = [e for e, n in self._held.items() if n >= per_endpoint] + list(self._gone)
        now = utcnow()
        lease = now + timedelta(seconds=self._lease_s)
        if self._pg_dsn is not None:
            pool = await self._pg()
            async with pool.acquire() as conn:
                jobs = await claims.claim(
                    conn, now, lease, limit=room, per_endpoint=per_endpoint,
                    held=self._held, exclude=full,
                )  # fmt: skip
            # Rows over an endpoint's share are not taken, so "full" means the limit was reached.
            came_back_full = len(jobs) >= room
        else:
            counts = dict(self._held)
            async with transaction(self._sessions) as session:
                rows = await repository.claim_due(session, now, limit=room, exclude=full)
                jobs = []
                for row in rows:
                    if counts.get(row.endpoint_id, 0) < per_endpoint:
                        jobs.append(row)
                        counts[row.endpoint_id] = counts.get(row.endpoint_id, 0) + 1
                await repository.lease(session, [j.delivery_id for j in jobs], lease)
            came_back_full = len(rows) >= room
        self._enqueue(jobs)
        self._dispatch()
        return came_back_full

    def _enqueue(self, jobs: list[Job]) -> None:
        """Claimed jobs join their endpoint's queue, in claim order."""
        for job in jobs:
            e = job.endpoint_id
            self._held[e] = self._held.get(e, 0) + 1
            self._seq += 1
            queue = self._ready.get(e)
            if queue is None:
                queue = self._ready[e] = deque()
            if not queue and self._in_flight.get(e, 0) < self._cap:
                heapq.heappush(self._eligible, (self._seq, e))
            queue.append((self._seq, job))
        self.stats.claimed += len(jobs)

    async def _pg(self) -> Any:
        if self._pg_pool is None:
            import asyncpg  # type: ignore[import-untyped]

            assert self._pg_dsn is not None
            self._pg_pool = await asyncpg.create_pool(
                self._pg_dsn,
                min_size=1,
                max_size=3,
                reset=_no_reset,
                server_settings={"synchronous_commit": "off"},
            )
        return self._pg_pool

    def _dispatch(self) -> None:
        """Start ready jobs, oldest first, while the global and per-endpoint caps allow."""
        total = self.in_flight
        eligible = self._eligible
        while eligible and total < self._max:
            seq, e = heapq.heappop(eligible)
            queue = self._ready.get(e)
            if not queue or queue[0][0] != seq or self._in_flight.get(e, 0) >= self._cap:
                continue  # stale: started, dropped, or the endpoint is at its cap meanwhile
            _, job = queue.popleft()
            self._start(job)
            total += 1
            if queue and self._in_flight[e] < self._cap:
                heapq.heappush(eligible, (queue[0][0], e))
            elif not queue:
                del self._ready[e]

    def _became_free(self, e: uuid.UUID) -> None:
        """An endpoint finished a request: its oldest ready job may start again."""
        queue = self._ready.get(e)
        if queue and self._in_flight.get(e, 0) < self._cap:
            heapq.heappush(self._eligible, (queue[0][0], e))

    def _start(self, job: Job) -> None:
        """Hand ``job`` to an idle worker (``_dispatch`` starts at most one per free slot)."""
        n = self._in_flight.get(job.endpoint_id, 0) + 1
        self._in_flight[job.endpoint_id] = n
        peak = self.stats.per_endpoint_peak
        if n > peak.get(job.endpoint_id, 0):
            peak[job.endpoint_id] = n
        total = self._max - len(self._idle) + 1
        if total > self.stats.in_flight_peak:
            self.stats.in_flight_peak = total
        self._idle.popleft().set_result(job)

    async def _worker(self, idle: asyncio.Future[Job | None]) -> None:
        """One slot: send the job it is handed, settle the books, wait for the next one."""
        loop = asyncio.get_running_loop()
        while True:
            job = await idle
            if job is None:
                return
            try:
                await self._send(job)
            except Exception as exc:  # noqa: BLE001 - a slot must outlive any one job
                # Its lease runs out and a later claim sends it again (at-least-once).
                log.error(
                    "webhook send failed", extra={"delivery": job.delivery_id, "error": repr(exc)}
                )
            e = job.endpoint_id
            _decrement(self._in_flight, e)
            _decrement(self._held, e)
            if self._stopping:
                return
            idle = loop.create_future()
            self._idle.append(idle)
            self._became_free(e)
            self._dispatch()
            self._slot_freed.set()

    async def _send(self, job: Job) -> None:
        assert self._client is not None
        attempted_at = utcnow()
        headers = signing.headers(job.secrets, str(job.event_id), job.body)
        outcome = await self._client.post(job.url, headers, job.body)
        if outcome.status_code == 410:
            self._drop_ready(job.endpoint_id)
        self._results.append(AttemptResult(job.delivery_id, attempted_at, outcome))
        self._have_results.set()
        self.stats.attempts += 1
        self.stats.succeeded += outcome.ok
        kind = metrics.webhook_outcome(outcome.status_code)
        counted = _OUTCOME_METRICS.get(kind)
        if counted is None:
            counted = _OUTCOME_METRICS[kind] = (
                metrics.WEBHOOK_ATTEMPTS.labels(kind),
                metrics.WEBHOOK_SECONDS.labels(kind),
            )
        counted[0].inc()
        counted[1].observe(outcome.latency_ms / 1000)

    def _drop_ready(self, endpoint_id: uuid.UUID) -> None:
        """The endpoint is going away: its ready jobs are not sent (disabling fails them)."""
        self._gone.add(endpoint_id)
        for _ in self._ready.pop(endpoint_id, ()):
            _decrement(self._held, endpoint_id)

    async def _release(self, delivery_ids: list[int]) -> None:
        """Hand back claimed but unsent deliveries, so another sender need not wait for leases."""
        if not delivery_ids:
            return
        try:
            async with transaction(self._sessions) as session:
                await repository.release(session, delivery_ids)
        except Exception as exc:  # noqa: BLE001 - the leases expire anyway
            log.warning("could not release leases", extra={"error": repr(exc)})

    async def _write_results(self, stopping: asyncio.Event) -> None:
        while True:
            if stopping.is_set() and not self._results:
                return
            await self._have_results.wait()
            if not stopping.is_set():
                await asyncio.sleep(SETTLE_EVERY_S)  # one transaction for many outcomes
            self._have_results.clear()
            batch, self._results = self._results, []
            gone = set(self._gone)
            if batch:
                await self._settle(batch)
            self._gone -= gone  # settled: the database says whether they are disabled now

    async def _settle(self, batch: list[AttemptResult]) -> None:
        async def write() -> None:
            rest = batch
            if self._pg_dsn is not None:
                ok = [r for r in batch if r.outcome.ok]
                rest = [r for r in batch if not r.outcome.ok]
                if ok:
                    pool = await self._pg()
                    async with pool.acquire() as conn:
                        await claims.record_successes(conn, ok, utcnow())
                    batch[:] = rest  # written: a retry of write() must not record them twice
            if rest:
                async with transaction(self._sessions) as session:
                    await settle(session, rest, self._policy, utcnow())

        try:
            await self._retrying(write)
        except Exception as exc:  # noqa: BLE001 - loop boundary; the leases expire and resend
            self.stats.settle_failures += len(batch)
            log.error(
                "could not record webhook attempts; they will be sent again",
                extra={"deliveries": [r.delivery_id for r in batch], "error": repr(exc)},
            )

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Transient database failures are retried in place, for up to ten minutes."""
        loop = asyncio.get_running_loop()
        started, attempt = loop.time(), 0
        while True:
            try:
                return await call()
            except Exception as exc:
                if not _transient(exc) or loop.time() - started > 600:
                    raise
                attempt += 1
                log.warning("webhook sender: transient failure", extra={"error": repr(exc)})
                await asyncio.sleep(min(5.0, 0.1 * 2**attempt))


async def _first(a: Awaitable[object], b: Awaitable[object] | None, timeout: float) -> None:
    """Wait until ``a`` or ``b`` is done or ``timeout`` passes; cancel what is left."""
    tasks = [asyncio.ensure_future(a)] + ([asyncio.ensure_future(b)] if b is not None else [])
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _transient(exc: BaseException) -> bool:
    """The bus runner's rule, plus what a plain asyncpg connection raises for the same causes."""
    if is_transient(exc):
        return True
    try:
        import asyncpg
    except ImportError:
        return False
    return isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.exceptions.SerializationError
        | asyncpg.exceptions.DeadlockDetectedError,
    )


async def _no_reset(_conn: object) -> None:
    """Only single statements outside transactions run on these connections: nothing to reset."""


def _decrement(counts: dict[uuid.UUID, int], key: uuid.UUID) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]

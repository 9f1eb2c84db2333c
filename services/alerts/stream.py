"""The live alert feed as Server-Sent Events, read from the alert table.

Why the table and not the ``alerts.v1`` topic: the alert table is the source of truth (an alert row
is written in the same transaction as the change that caused it), it is the same table in the
embedded mode (SQLite, SQL-log bus) and the scale-out mode (PostgreSQL, Kafka), and a query by
``(tenant_id, updated_at, id)`` gives a per-tenant position that a client can resume from with
``Last-Event-ID``. Reading the topic instead would mean a Kafka consumer group per open browser tab
(a join and a rebalance per connection, every tenant's records read to keep one tenant's), a resume
point made of per-partition offsets, and a feed that forgets whatever the topic's retention dropped.
The price is one indexed query per connection per ``poll_s``, which is small for an operators' console.

Ordering and late commits: ``updated_at`` is set when a transaction writes a row, not when it
commits, so on PostgreSQL a row can become visible after a newer one was already sent. Every poll
therefore reads again the last ``overlap_s`` before the cursor and skips what this connection already
sent. Delivery is at least once: a resumed stream may repeat changes from just before its cursor, so
a client keeps, per alert id, the version with the newest ``updated_at`` (each event carries the whole
alert, so a repeat is harmless).

Frames: ``retry:`` first, then ``id: <cursor>`` / ``event: alert`` / ``data: <alert JSON>`` per change,
and a ``: heartbeat`` comment every ``heartbeat_s`` so proxies keep the connection open and a client
notices a dead one. The stream ends when the client goes away (Starlette cancels the generator), when
the server shuts down, when the API key behind it is revoked, or when the stream token that opened
it expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.tokens import TOKEN_TTL_S, still_valid
from shared.auth import Principal
from shared.db import utcnow
from shared.errors import InvalidInput

log = logging.getLogger("throughline.alerts")


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in one tenant's alert changes: ``(updated_at, alert id)``."""

    at: datetime
    id: str

    def encode(self) -> str:
        micros = (self.at - _EPOCH_AT) // timedelta(microseconds=1)
        return f"{micros}-{self.id}"

    @classmethod
    def decode(cls, raw: str) -> Cursor:
        micros, sep, ident = raw.strip().partition("-")
        try:
            if not sep or not micros.isdigit() or len(micros) > 18:
                raise ValueError(raw)
            ident = str(uuid.UUID(ident))
        except ValueError:
            raise InvalidInput("Last-Event-ID: not an event id this stream sent") from None
        return cls(_EPOCH_AT + timedelta(microseconds=int(micros)), ident)


_EPOCH_AT = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Change:
    """One alert as it is now, ready to send."""

    cursor: Cursor
    data: bytes  # the alert as JSON, one line


# (session, tenant, after this position, at most this many) -> changes in cursor order
FetchChanges = Callable[[AsyncSession, uuid.UUID, Cursor, int], Awaitable[list[Change]]]
# (session, tenant) -> the newest position, or None when the tenant has no alerts
LatestCursor = Callable[[AsyncSession, uuid.UUID], Awaitable[Cursor | None]]

EPOCH = Cursor(_EPOCH_AT, "")


@dataclass(frozen=True)
class StreamConfig:
    poll_s: float = 1.0
    heartbeat_s: float = 15.0
    overlap_s: float = 10.0
    retry_ms: int = 3000
    batch: int = 200
    token_ttl_s: int = TOKEN_TTL_S


def frame(change: Change) -> bytes:
    return (
        b"id: "
        + change.cursor.encode().encode()
        + b"\nevent: alert\ndata: "
        + change.data
        + b"\n\n"
    )


class AlertStream:
    """One connection's stream of a tenant's alert changes."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        principal: Principal,
        fetch: FetchChanges,
        config: StreamConfig,
        shutdown: asyncio.Event,
        ends_at: datetime | None = None,
    ):
        self._ends_at = ends_at  # a token-opened stream lasts as long as its token
        self._sessions = sessions
        self._principal = principal
        self._fetch = fetch
        self._config = config
        self._shutdown = shutdown
        self._sent: dict[tuple[str, datetime], None] = {}
        self.cursor = EPOCH

    async def start(self, resume: Cursor | None, latest: LatestCursor) -> None:
        """Resume after ``resume`` (at least once), or start from now when it is None."""
        if resume is not None:
            self.cursor = resume
            return
        async with self._sessions() as session:
            self.cursor = await latest(session, self._principal.tenant_id) or EPOCH
            # What is visible now is not news: only what changes from here on, or commits late.
            for change in await self._read(session):
                self._remember(change)

    async def events(self) -> AsyncIterator[bytes]:
        yield f"retry: {self._config.retry_ms}\n\n".encode()
        loop = asyncio.get_running_loop()
        beat_at = loop.time() + self._config.heartbeat_s
        while not self._shutdown.is_set():
            if self._ends_at is not None and utcnow() >= self._ends_at:
                return
            try:
                async with self._sessions() as session:
                    changes = await self._read(session)
                    if loop.time() >= beat_at:
                        if not await still_valid(session, self._principal, utcnow()):
                            return
            except (OperationalError, DBAPIError) as exc:
                # End the stream cleanly; the client reconnects with Last-Event-ID and resumes.
                log.warning("alert stream: database unavailable (%s); closing", type(exc).__name__)
                return
            for change in changes:
                if self._remember(change):
                    yield frame(change)
            if loop.time() >= beat_at:
                yield b": heartbeat\n\n"
                beat_at = loop.time() + self._config.heartbeat_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._shutdown.wait(), self._config.poll_s)

    async def _read(self, session: AsyncSession) -> list[Change]:
        """Every change after ``cursor - overlap``, page by page."""
        window = self.cursor.at - timedelta(seconds=self._config.overlap_s)
        after = Cursor(max(window, EPOCH.at), "")
        out: list[Change] = []
        while True:
            page = await self._fetch(session, self._principal.tenant_id, after, self._config.batch)
            out += page
            if len(page) < self._config.batch:
                return out
            after = page[-1].cursor

    def _remember(self, change: Change) -> bool:
        """Record a change as sent; False when this connection sent it already."""
        key = (change.cursor.id, change.cursor.at)
        if key in self._sent:
            return False
        self._sent[key] = None
        if change.cursor > self.cursor:
            self.cursor = change.cursor
        self._forget_old()
        return True

    def _forget_old(self) -> None:
        floor = self.cursor.at - timedelta(seconds=self._config.overlap_s * 2)
        if len(self._sent) > 4 * self._config.batch:
            self._sent = {k: None for k in self._sent if k[1] >= floor}

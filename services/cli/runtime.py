"""Building the shared resources (engine, sessions, bus, outbox relay) and serving HTTP apps."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.timeline.reads import close_reads
from shared.bus import Bus
from shared.bus.kafka import KafkaBus
from shared.bus.sql import SqlBus
from shared.db import create_engine, session_factory
from shared.outbox import OutboxRelay
from shared.schema import ALL_TOPICS
from shared.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    relay: OutboxRelay


def build_bus(settings: Settings, engine: AsyncEngine) -> Bus:
    if settings.bus == "kafka":
        return KafkaBus(
            settings.kafka_bootstrap,
            partitions=settings.topic_partitions,
            group_prefix=settings.topic_prefix,
        )
    return SqlBus(engine)


@contextlib.asynccontextmanager
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    bus = build_bus(settings, engine)
    try:
        await bus.create_topics([settings.topic(t) for t in ALL_TOPICS])
        yield Runtime(settings, engine, sessions, bus, OutboxRelay(bus, sessions))
    finally:
        await bus.close()
        await close_reads(engine)
        await engine.dispose()


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: FastAPI, host: str, port: int, stop: asyncio.Event) -> None:
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    shutdown = getattr(app.state, "shutdown", None)
    if shutdown is not None:
        shutdown.set()  # uvicorn waits for open responses: end the streaming ones
    server.should_exit = True
    stopper.cancel()
    await task


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

"""Private servers the fault tests may crash: one PostgreSQL cluster and one Kafka broker per run,
the broker's proxied listener behind a ``FaultProxy`` (see servers.py and proxy.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.faults.proxy import FaultProxy
from tests.faults.servers import PrivateKafka, PrivatePostgres, free_port


@dataclass
class KafkaUnderTest:
    broker: PrivateKafka
    proxy: FaultProxy  # in front of the broker's PLAINTEXT listener, on its advertised port


@pytest.fixture(scope="session")
async def private_pg() -> AsyncIterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        await asyncio.to_thread(pg.init)
        await asyncio.to_thread(pg.start)
        yield pg
    finally:
        await asyncio.to_thread(pg.remove)


@pytest.fixture(scope="session")
async def private_kafka() -> AsyncIterator[KafkaUnderTest]:
    proxy_port = free_port()
    broker = PrivateKafka(advertised_port=proxy_port)
    proxy = await FaultProxy("127.0.0.1", broker.port, listen_port=proxy_port).start()
    try:
        await asyncio.to_thread(broker.init)
        broker.start()
        await broker.wait_ready()
        yield KafkaUnderTest(broker, proxy)
    finally:
        await proxy.stop()
        await asyncio.to_thread(broker.remove)

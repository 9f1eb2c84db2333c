"""A consumer that fetches the next batch ahead commits only what it handled (both buses)."""

from __future__ import annotations

import asyncio

import pytest

from services.cli.runtime import Runtime
from services.timeline.consumer import timeline_consumer
from shared.bus.runner import Decoded, Outbox
from shared.schema import TOPIC_EVENTS
from tests.integration.test_ingest import Crash, count_events, drain, event, records


async def test_a_batch_fetched_ahead_is_not_committed_until_handled(stack: Runtime) -> None:
    number = "1000000077"
    topic = stack.settings.topic(TOPIC_EVENTS)
    await stack.bus.publish(topic, records([event(number, i) for i in range(6)]))
    loop = timeline_consumer(stack.settings, stack.bus, stack.sessions, stack.relay)
    loop.batch_size, loop.prefetch = 2, True
    handle = loop.handle
    handled: list[int] = []

    async def crash_on_second_batch(batch: list[Decoded]) -> Outbox:
        handled.append(len(batch))
        if len(handled) == 2:
            await asyncio.sleep(1.0)  # the third batch is fetched meanwhile
            raise Crash
        return await handle(batch)

    loop.handle = crash_on_second_batch
    with pytest.raises(Crash):
        await asyncio.wait_for(loop.run(asyncio.Event()), 30)
    assert handled == [2, 2] and await count_events(stack, number) == 2

    # Only the first batch's offsets were committed: the rest comes again, all four records.
    async with stack.bus.consumer(loop.group, loop.topics) as consumer:
        again = []
        deadline = asyncio.get_running_loop().time() + 10
        while len(again) < 4 and asyncio.get_running_loop().time() < deadline:
            again.extend(await consumer.poll(10, 200))
    assert [r.value for r in again] == [
        r.value for r in records([event(number, i) for i in range(2, 6)])
    ]

    replay = timeline_consumer(stack.settings, stack.bus, stack.sessions, stack.relay)
    await drain(stack, replay, until=4)
    assert await count_events(stack, number) == 6

"""Service roles: what ``throughline run <role>`` starts, each a set of tasks sharing one runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from services.alerts.scanner import Scanner
from services.carriers.adapters import ADAPTERS
from services.carriers.consumer import carriers_consumer
from services.carriers.fetchers import open_fetchers
from services.carriers.poller import Poller
from services.cli.app import create_api_app
from services.cli.runtime import Runtime, serve
from services.simulator.app import create_app as create_simulator_app
from services.timeline.consumer import timeline_consumer
from services.webhooks.consumer import webhooks_consumer
from services.webhooks.sender import Sender
from shared.settings import Settings

log = logging.getLogger("throughline.roles")

Role = Callable[[Runtime, asyncio.Event], Awaitable[None]]


async def run_api(rt: Runtime, stop: asyncio.Event) -> None:
    s = rt.settings
    log.info("api listening", extra={"url": f"http://{s.api_host}:{s.api_port}"})
    await _together(serve(create_api_app(rt), s.api_host, s.api_port, stop), rt.relay.run(stop))


async def run_timeline_consumer(rt: Runtime, stop: asyncio.Event) -> None:
    loop = timeline_consumer(rt.settings, rt.bus, rt.sessions, rt.relay)
    await _together(loop.run(stop), rt.relay.run(stop))


async def run_carriers_poller(rt: Runtime, stop: asyncio.Event) -> None:
    async with open_fetchers(rt.settings) as fetchers:
        poller = Poller(rt.settings, rt.bus, rt.sessions, fetchers)
        targets = carriers_consumer(rt.settings, rt.bus, rt.sessions, set(ADAPTERS))
        await _together(targets.run(stop), poller.run(stop))


async def run_webhooks_consumer(rt: Runtime, stop: asyncio.Event) -> None:
    await webhooks_consumer(rt.settings, rt.bus, rt.sessions).run(stop)


async def run_webhooks_sender(rt: Runtime, stop: asyncio.Event) -> None:
    await Sender(rt.settings, rt.sessions).run(stop)


async def run_alerts_scanner(rt: Runtime, stop: asyncio.Event) -> None:
    await _together(Scanner(rt.settings, rt.sessions, rt.relay).run(stop), rt.relay.run(stop))


async def run_simulator(rt: Runtime, stop: asyncio.Event) -> None:
    await serve_simulator(rt.settings, stop)


async def serve_simulator(s: Settings, stop: asyncio.Event) -> None:
    log.info("simulator listening", extra={"url": f"http://{s.simulator_host}:{s.simulator_port}"})
    await serve(create_simulator_app(s), s.simulator_host, s.simulator_port, stop)


async def run_all(rt: Runtime, stop: asyncio.Event) -> None:
    await _together(*(role(rt, stop) for name, role in ROLES.items() if name != "all"))


async def _together(*tasks: Awaitable[None]) -> None:
    """Run tasks until all finish; if one fails, stop the others and raise its error."""
    running = [asyncio.ensure_future(t) for t in tasks]
    try:
        await asyncio.gather(*running)
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


ROLES: dict[str, Role] = {
    "api": run_api,
    "timeline-consumer": run_timeline_consumer,
    "carriers-poller": run_carriers_poller,
    "webhooks-consumer": run_webhooks_consumer,
    "webhooks-sender": run_webhooks_sender,
    "alerts-scanner": run_alerts_scanner,
    "simulator": run_simulator,
    "all": run_all,
}

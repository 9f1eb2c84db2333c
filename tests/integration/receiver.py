"""A real merchant webhook receiver for the tests: an aiohttp server on 127.0.0.1, one behaviour per
path, every request recorded (path, headers, body, arrival time)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson
from aiohttp import web


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def type(self) -> str:
        return str(orjson.loads(self.body)["type"])


Behaviour = Callable[[Received, int], Awaitable[web.StreamResponse]]


async def ok(_: Received, __: int) -> web.StreamResponse:
    return web.Response(text="ok")


def fail_first(n: int, status: int = 500, headers: dict[str, str] | None = None) -> Behaviour:
    """Answer ``status`` to the first ``n`` requests of each webhook-id, then 200."""

    async def behave(_: Received, nth: int) -> web.StreamResponse:
        if nth <= n:
            return web.Response(status=status, text="not now", headers=headers)
        return web.Response(text="ok")

    return behave


def always(status: int, headers: dict[str, str] | None = None) -> Behaviour:
    async def behave(_: Received, __: int) -> web.StreamResponse:
        return web.Response(status=status, text=f"answering {status}", headers=headers)

    return behave


async def hang(_: Received, __: int) -> web.StreamResponse:
    await asyncio.sleep(3600)
    return web.Response(text="too late")


@dataclass
class Receiver:
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    _per_id: Counter[tuple[str, str]] = field(default_factory=Counter)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    def on(self, path: str, behaviour: Behaviour) -> str:
        self.behaviours[path] = behaviour
        return f"{self.base_url}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = Received(
            request.path, dict(request.headers), await request.read(), time.monotonic()
        )
        self.requests.append(received)
        key = (request.path, request.headers.get("webhook-id", ""))
        self._per_id[key] += 1
        behaviour = self.behaviours.get(request.path)
        if behaviour is None:
            return web.Response(status=404, text="no such path")
        return await behaviour(received, self._per_id[key])

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

"""A TCP fault proxy for tests: sits between a service process and its broker or database.

Modes, switched at any time and applied to open connections as well as new ones:

- ``pass``: bytes flow both ways untouched.
- ``latency``: every chunk waits ``delay_s`` before it is forwarded.
- ``blackhole``: nothing flows and nothing is answered, like a network partition: connections stay
  open, bytes wait in the buffers (as TCP would keep retransmitting them) and new connections are
  accepted but not connected upstream. When the mode changes back, the held bytes flow on.
- ``reset``: every open connection is closed with a TCP RST at once, and new connections are
  reset as soon as they are accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["pass", "latency", "blackhole", "reset"]


@dataclass
class Stats:
    connections: int = 0
    resets: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(eq=False)  # hashed by identity: links live in a set
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, listen_port: int = 0):
        self.upstream = (upstream_host, upstream_port)
        self._listen_port = listen_port
        self.mode: Mode = "pass"
        self.delay_s = 0.0
        self.stats = Stats()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self._listen_port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            self._close(link, rst=False)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def set(self, mode: Mode, delay_s: float = 0.0) -> None:
        self.mode = mode
        self.delay_s = delay_s
        if mode == "blackhole":
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode == "reset":
            for link in list(self._links):
                self._close(link, rst=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        link = _Link(writer)
        if self.mode == "reset":
            self._close(link, rst=True)
            return
        self._links.add(link)
        try:
            await self._flowing.wait()  # a black hole: accepted, never connected upstream
            if self.mode == "reset" or link not in self._links:
                self._close(link, rst=True)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                self._close(link, rst=True)  # upstream down: the client sees a reset, as in life
                return
            link.upstream = up_writer
            link.tasks = [
                asyncio.create_task(self._pump(link, reader, up_writer, up=True)),
                asyncio.create_task(self._pump(link, up_reader, writer, up=False)),
            ]
            await asyncio.gather(*link.tasks, return_exceptions=True)
        finally:
            self._close(link, rst=False)

    async def _pump(
        self, link: _Link, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, up: bool
    ) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await src.read(65536)
                if not data:
                    break
                await self._flowing.wait()  # read just before a black hole: held, not lost
                if self.mode == "latency" and self.delay_s > 0:
                    await asyncio.sleep(self.delay_s)
                if link not in self._links:
                    break
                dst.write(data)
                await dst.drain()
                if up:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._close(link, rst=False)

    def _close(self, link: _Link, *, rst: bool) -> None:
        """Close both sides (idempotent); with ``rst`` the client gets a TCP reset."""
        self._links.discard(link)
        if rst:
            self.stats.resets += 1
        for w in (link.client, link.upstream):
            if w is None:
                continue
            if rst:
                _abort_with_rst(w)
            else:
                with contextlib.suppress(Exception):
                    w.close()
        for task in link.tasks:
            if task is not asyncio.current_task():
                task.cancel()


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    """SO_LINGER 0 then abort: the kernel sends RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()

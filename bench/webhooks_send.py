"""Webhook sender throughput to a local receiver, against raw HTTP client POST loops, in one run.

    .venv/bin/python bench/webhooks_send.py [--deliveries 6000] [--endpoints 10] [--per-endpoint 5]
        [--db postgres|sqlite] [--rounds 3] [--loop uvloop|asyncio] [--skip-httpx] [--profile F]

A receiver runs in its own process (a bare keep-alive HTTP/1.1 server on uvloop that answers 200 to
everything, so it is never the bottleneck). Then, at the same number of requests in flight
(endpoints x per-endpoint):

  (a) raw aiohttp: a POST loop of the same body, no database, no signing;
  (b) raw httpx: the same loop (the client the sender did not pick; performance-notes.md);
  (c) the sender (services.webhooks.sender) on PostgreSQL (a fresh database) or SQLite: claim with
      FOR UPDATE SKIP LOCKED and leases, sign, POST, record every attempt, until every delivery is
      settled as succeeded in the database.

(b) once, then (a) and (c) alternately ``--rounds`` times (the machine's load shifts over time),
and prints requests/s for each, requests per CPU-second of this process, the ratio of (c) to (a)
per round and of the medians. Everything runs on ``--loop`` (uvloop, as the service roles do).
Each round's database is dropped at its end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench import infra  # noqa: E402
from bench.machine import CpuMeter, describe, start_profiler, stop_profiler  # noqa: E402
from services.webhooks import endpoints, handlers  # noqa: E402
from services.webhooks.events import (
    NewEvent,  # noqa: E402
    encode_body,  # noqa: E402
)
from services.webhooks.models import WebhookDelivery  # noqa: E402
from services.webhooks.sender import Sender  # noqa: E402
from shared.auth import create_tenant  # noqa: E402
from shared.db import create_engine, session_factory, transaction  # noqa: E402
from shared.migrate import upgrade_async  # noqa: E402
from shared.settings import Settings  # noqa: E402

RECEIVER = r"""
import asyncio, sys
try:
    import uvloop
except ImportError:
    uvloop = None

class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf = transport, b""
    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buf[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length:]
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

async def main():
    server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

(uvloop.run if uvloop else asyncio.run)(main())
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=6000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--per-endpoint", type=int, default=5, help="requests in flight each")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the sender phase")
    parser.add_argument("--skip-httpx", action="store_true", help="leave out the httpx loop")
    parser.add_argument("--rounds", type=int, default=3, help="raw/sender pairs, interleaved")
    parser.add_argument(
        "--loop", choices=["uvloop", "asyncio"], default="uvloop",
        help="event loop of this process (the service roles run on uvloop)",
    )  # fmt: skip
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        if args.loop == "uvloop":
            import uvloop

            return uvloop.run(run(args, port))
        return asyncio.run(run(args, port))
    finally:
        receiver.terminate()
        receiver.wait()


async def run(args: argparse.Namespace, port: int) -> int:
    print(describe() + f", event loop {args.loop}")
    in_flight = args.endpoints * args.per_endpoint
    n = args.deliveries - args.deliveries % args.endpoints
    base = f"http://127.0.0.1:{port}"
    body = encode_body("shipment.status_changed", datetime.now(UTC), {"shipment_id": "x" * 36})
    print(f"setup: {n} deliveries to {args.endpoints} endpoints, {in_flight} in flight, "
          f"{len(body)}-byte bodies, receiver {base}")  # fmt: skip

    raw_httpx = None
    if not args.skip_httpx:
        raw_httpx = await _raw_httpx(base, body, min(n, 3000), in_flight)
        print(f"(b) raw httpx POST loop      {raw_httpx:8.0f} requests/s")
    raws: list[float] = []
    sends: list[float] = []
    for r in range(1, args.rounds + 1):  # interleaved: the machine's load shifts over time
        raw_meter = CpuMeter(clients=[os.getpid()])
        raw_meter.start()
        raws.append(await _raw_aiohttp(base, body, n, in_flight))
        raw_meter.stop()
        print(f"round {r} (a) raw aiohttp POST loop {raws[-1]:8.0f} requests/s  "
              f"({_per_cpu(n, raw_meter)} requests per CPU-second of this process)")  # fmt: skip
        rate, meter = await _sender(args, base, n, in_flight)
        sends.append(rate)
        print(f"round {r} (c) sender on {args.db:<8}  {rate:8.0f} deliveries/s  "
              f"({_per_cpu(n, meter)} per CPU-second; {meter.line()})")  # fmt: skip
        print(f"round {r} ratio sender / raw aiohttp: {rate / raws[-1]:.2f}")
    raw, sent = statistics.median(raws), statistics.median(sends)
    print(f"median: raw aiohttp {raw:.0f}/s, sender {sent:.0f}/s, ratio {sent / raw:.2f} "
          f"(goal >= 3,000/s and >= 0.7)")  # fmt: skip
    if raw_httpx:
        print(f"ratio raw aiohttp / raw httpx: {raw / raw_httpx:.1f}")
    return 0


def _per_cpu(n: int, meter: CpuMeter) -> str:
    cpu = meter.result.get("client", 0.0)
    return f"{n / cpu:,.0f}" if cpu > 0 else "n/a"


async def _loop(post: object, n: int, in_flight: int) -> float:
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            await post(i)  # type: ignore[operator]

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return n / (time.perf_counter() - started)


async def _raw_aiohttp(base: str, body: bytes, n: int, in_flight: int) -> float:
    headers = {"content-type": "application/json", "webhook-id": "raw"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as s:

        async def post(i: int) -> None:
            async with s.post(f"{base}/raw", data=body, headers=headers) as resp:
                await resp.read()
                assert resp.status == 200

        await _loop(post, min(n, 500), in_flight)  # warm the pool
        return await _loop(post, n, in_flight)


async def _raw_httpx(base: str, body: bytes, n: int, in_flight: int) -> float:
    headers = {"content-type": "application/json", "webhook-id": "raw"}
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(limits=limits) as c:

        async def post(i: int) -> None:
            resp = await c.post(f"{base}/raw", content=body, headers=headers)
            assert resp.status_code == 200

        await _loop(post, min(n, 300), in_flight)
        return await _loop(post, n, in_flight)


async def _sender(
    args: argparse.Namespace, base: str, n: int, in_flight: int
) -> tuple[float, CpuMeter]:
    admin = url = None
    tmp = tempfile.TemporaryDirectory()
    if args.db == "postgres":
        admin = infra.pg_admin_url()
        url = await infra.create_database(admin)
    else:
        url = f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    await upgrade_async(url)
    settings = Settings(
        database_url=url,
        webhook_allow_loopback=True,
        webhook_max_in_flight=in_flight,
        webhook_endpoint_concurrency=args.per_endpoint,
        webhook_poll_interval_s=0.05,
        webhook_stale_after_s=1e9,
    )
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        await _seed(sessions, settings, base, args.endpoints, n // args.endpoints)
        stop = asyncio.Event()
        sender = Sender(settings, sessions)
        meter = CpuMeter(clients=[os.getpid()])
        profiler = start_profiler(args.profile)
        meter.start()
        started = time.perf_counter()
        task = asyncio.create_task(sender.run(stop))
        # Watch the sender's own count first (no database work in the measured process), then
        # the database until every delivery is settled as succeeded there.
        while sender.stats.succeeded < n:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        while await _succeeded(sessions) < n:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        meter.stop()
        stop_profiler(profiler)
        stop.set()
        await task
        return n / elapsed, meter
    finally:
        await engine.dispose()
        if admin is not None and url is not None:
            await infra.drop_database(admin, url)
        tmp.cleanup()


async def _seed(
    sessions: object, settings: Settings, base: str, n_endpoints: int, events: int
) -> None:
    policy = handlers.Policy.from_settings(settings)
    now = datetime.now(UTC)
    async with transaction(sessions) as s:  # type: ignore[arg-type]
        tenant = await create_tenant(s, "bench")
        for i in range(n_endpoints):
            await endpoints.create_endpoint(s, tenant.id, policy, url=f"{base}/e{i}")
    for start in range(0, events, 500):
        batch = [
            NewEvent(uuid.uuid4(), tenant.id, "shipment.status_changed", None, now,
                     encode_body("shipment.status_changed", now, {"n": start + i}))
            for i in range(min(500, events - start))
        ]  # fmt: skip
        async with transaction(sessions) as s:  # type: ignore[arg-type]
            await handlers.schedule_events(s, batch, now)


async def _succeeded(sessions: object) -> int:
    async with sessions() as s:  # type: ignore[operator]
        stmt = select(func.count()).where(WebhookDelivery.status == "succeeded")
        return int(await s.scalar(stmt) or 0)


if __name__ == "__main__":
    raise SystemExit(main())

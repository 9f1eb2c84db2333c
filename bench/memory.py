"""Resident memory of every service role under load, against the 200 MB goal.

    .venv/bin/python bench/memory.py [--shipments 3000] [--duration 90] [--warmup 30]

Starts each role as its own real process (``python -m services.cli run <role>``) against a fresh
PostgreSQL database and Kafka topics under a random prefix: api, timeline-consumer,
carriers-poller, webhooks-consumer, webhooks-sender and simulator (the carrier sandboxes, on a
free port, which every carrier base URL points at). Then loads all of them at once for
``--warmup`` + ``--duration`` seconds:

- the API: merchants register ``--shipments`` shipments (POST /v1/shipments), then public tracking
  GETs over those numbers (16 concurrent clients) for the whole run;
- the timeline consumer: the deterministic workload's events (``bench/workload.py``) for those
  same numbers, published to Kafka in slices across the run;
- the webhooks consumer and sender: every shipment update of the tenant fans out to two webhook
  endpoints on a local receiver (loopback allowed), so the sender is busy throughout;
- the carriers poller and the simulator: the registered numbers are poll targets, due every
  couple of seconds.

RSS (VmRSS of the process) is sampled every second; the table gives the median and the maximum
over the steady-state window (after the warm-up), and the goal.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from bench import infra  # noqa: E402
from bench.machine import ROOT, cpu_seconds, describe, rss_mib  # noqa: E402
from bench.webhooks_send import RECEIVER  # noqa: E402
from bench.workload import generate  # noqa: E402
from shared.migrate import upgrade_async  # noqa: E402
from shared.schema import TOPIC_EVENTS  # noqa: E402
from shared.settings import Settings  # noqa: E402

ROLES = (
    "api",
    "timeline-consumer",
    "carriers-poller",
    "webhooks-consumer",
    "webhooks-sender",
    "simulator",
)
GOAL_MB = 200


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shipments", type=int, default=3000)
    parser.add_argument("--duration", type=float, default=90.0, help="seconds sampled")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before sampling")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return asyncio.run(run(args))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(args: argparse.Namespace) -> int:
    print(describe())
    admin = infra.pg_admin_url()
    bootstrap = infra.kafka_bootstrap()
    prefix = f"mem{uuid.uuid4().hex[:8]}."
    url = await infra.create_database(admin)
    workdir = Path(tempfile.mkdtemp(prefix="tl-mem-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220,ASYNC221 - set-up
    try:
        assert receiver.stdout is not None
        hook_port = int(receiver.stdout.readline())
        await upgrade_async(url)
        api_port, sim_port = _free_port(), _free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        env = {
            **os.environ,
            "THROUGHLINE_DATABASE_URL": url,
            "THROUGHLINE_BUS": "kafka",
            "THROUGHLINE_KAFKA_BOOTSTRAP": bootstrap,
            "THROUGHLINE_TOPIC_PREFIX": prefix,
            "THROUGHLINE_API_PORT": str(api_port),
            "THROUGHLINE_SIMULATOR_PORT": str(sim_port),
            "THROUGHLINE_PUBLIC_RATE_PER_MINUTE": str(10**9),
            "THROUGHLINE_MERCHANT_RATE_PER_MINUTE": str(10**9),
            "THROUGHLINE_MERCHANT_RATE_BURST": str(10**6),
            "THROUGHLINE_WEBHOOK_ALLOW_LOOPBACK": "true",
            "THROUGHLINE_POLL_INTERVAL_S": "2",
            "THROUGHLINE_POLL_MIN_INTERVAL_S": "1",
            "THROUGHLINE_POLL_RATE_PER_S": "200",
            "THROUGHLINE_POLL_BURST": "400",
            "THROUGHLINE_LOG_LEVEL": "WARNING",
            **{
                f"THROUGHLINE_{name.upper()}": sim_url
                for name in Settings.model_fields
                if name.endswith("_base_url")
            },
        }
        settings = Settings(_env_file=None, **{  # type: ignore[call-arg]
            "database_url": url, "bus": "kafka", "kafka_bootstrap": bootstrap, "topic_prefix": prefix,
        })  # fmt: skip
        for role in ROLES:
            log = open(workdir / f"{role}.log", "wb")  # noqa: ASYNC230,SIM115 - set-up; closed with the process
            procs[role] = subprocess.Popen(  # noqa: ASYNC220,ASYNC221 - set-up
                [sys.executable, "-m", "services.cli", "run", role],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        base = f"http://127.0.0.1:{api_port}"
        await _wait_up(base)
        await _wait_up(sim_url, path="/")
        key = await _merchant_key(env)
        workload = generate(args.shipments * 10, args.shipments, seed=11)
        numbers = list(workload.shipments)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
            for n in range(2):
                await _post(http, f"{base}/v1/webhook-endpoints",
                            {"url": f"http://127.0.0.1:{hook_port}/hook{n}"})  # fmt: skip
            await _register(http, base, numbers)
        print(f"roles up; {len(numbers):,} shipments registered, 2 webhook endpoints; "
              f"loading for {args.warmup:g} s warm-up + {args.duration:g} s sampled")  # fmt: skip
        samples = await _load_and_sample(args, base, bootstrap, settings, workload, procs)
        for role, proc in procs.items():
            if proc.poll() is not None:
                print(f"!! {role} exited with {proc.returncode}; log:")
                print((workdir / f"{role}.log").read_text()[-2000:])
        _report(samples, procs)
        return 0
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        receiver.terminate()
        receiver.wait()
        await infra.drop_database(admin, url)
        await infra.delete_topics(bootstrap, prefix)


async def _load_and_sample(
    args: argparse.Namespace,
    base: str,
    bootstrap: str,
    settings: Settings,
    workload: object,
    procs: dict[str, subprocess.Popen[bytes]],
) -> dict[str, list[float]]:
    records = workload.records()  # type: ignore[attr-defined]
    numbers = [n for _, n in workload.shipments]  # type: ignore[attr-defined]
    total = args.warmup + args.duration
    started = time.monotonic()
    stop = asyncio.Event()
    samples: dict[str, list[float]] = {role: [] for role in procs}
    counts: dict[int, int] = {}
    cpu0 = {role: cpu_seconds(p.pid) for role, p in procs.items()}

    async def publish() -> None:
        topic = settings.topic(TOPIC_EVENTS)
        slices = 20
        for i in range(slices):
            chunk = records[i * len(records) // slices : (i + 1) * len(records) // slices]
            await infra.produce(bootstrap, topic, chunk)
            await asyncio.sleep(max(0.0, started + total * (i + 1) / slices - time.monotonic()))

    async def track() -> None:
        async with aiohttp.ClientSession() as http:

            async def worker(w: int) -> None:
                i = w
                while not stop.is_set():
                    async with http.get(f"{base}/v1/tracking/{numbers[i % len(numbers)]}") as r:
                        await r.read()
                        counts[r.status] = counts.get(r.status, 0) + 1
                    i += 16

            await asyncio.gather(*(worker(w) for w in range(16)))

    async def sample() -> None:
        while not stop.is_set():
            if time.monotonic() - started >= args.warmup:
                for role, proc in procs.items():
                    samples[role].append(rss_mib(proc.pid))
            await asyncio.sleep(1.0)

    tasks = [asyncio.create_task(t()) for t in (publish, track, sample)]
    await asyncio.sleep(total)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    wall = time.monotonic() - started
    print(f"load: tracking GETs {sum(counts.values()) / wall:.0f}/s (by status {counts}); "
          f"{len(records):,} events published; {await _db_counts(settings.database_url)}")  # fmt: skip
    for role, proc in procs.items():
        samples[role + ":cpu"] = [(cpu_seconds(proc.pid) - cpu0[role]) / wall]
    return samples


async def _db_counts(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(infra.asyncpg_dsn(url))
    try:
        events = await conn.fetchval("SELECT count(*) FROM tracking_event")
        sent = await conn.fetchval("SELECT count(*) FROM webhook_attempt")
        ok = await conn.fetchval("SELECT count(*) FROM webhook_delivery WHERE status = 'succeeded'")
        polled = await conn.fetchval(
            "SELECT count(*) FROM poll_target WHERE last_polled_at IS NOT NULL"
        )
        targets = await conn.fetchval("SELECT count(*) FROM poll_target")
        return (f"stored {events:,} events; webhook attempts {sent:,} ({ok:,} deliveries "
                f"succeeded); {polled:,} of {targets:,} poll targets polled")  # fmt: skip
    finally:
        await conn.close()


def _report(samples: dict[str, list[float]], procs: dict[str, subprocess.Popen[bytes]]) -> None:
    print(f"\n{'role':<20} {'RSS median':>11} {'RSS max':>9} {'CPU':>11}  goal <= {GOAL_MB} MB")
    for role in procs:
        rss = samples[role] or [0.0]
        mb = [x * 1.048576 for x in rss]  # MiB -> MB
        ok = "met" if max(mb) <= GOAL_MB else "MISSED"
        print(f"{role:<20} {statistics.median(mb):8.0f} MB {max(mb):6.0f} MB "
              f"{samples[role + ':cpu'][0]:6.2f} cores  {ok}")  # fmt: skip


async def _merchant_key(env: dict[str, str]) -> str:
    out = subprocess.run(  # noqa: ASYNC220,ASYNC221 - set-up
        [sys.executable, "-m", "services.cli", "tenants", "create", "memory-bench"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        if line.startswith("api key "):
            return line.removeprefix("api key ").strip()
    raise RuntimeError(f"no API key in: {out}")


async def _post(http: aiohttp.ClientSession, url: str, body: object) -> None:
    async with http.post(url, json=body) as r:
        if r.status >= 300:
            raise RuntimeError(f"POST {url}: {r.status} {await r.text()}")


async def _register(http: aiohttp.ClientSession, base: str, numbers: list[tuple[str, str]]) -> None:
    queue = iter(numbers)

    async def worker() -> None:
        for carrier, number in queue:
            await _post(http, f"{base}/v1/shipments",
                        {"tracking_number": number, "carrier": carrier})  # fmt: skip

    await asyncio.gather(*(worker() for _ in range(8)))


async def _wait_up(base: str, path: str = "/healthz", timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(base + path) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{base} did not come up")
            await asyncio.sleep(0.3)


if __name__ == "__main__":
    raise SystemExit(main())

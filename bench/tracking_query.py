"""Public tracking query throughput and latency against a bare FastAPI baseline, in one run.

    .venv/bin/python bench/tracking_query.py [--shipments 1000000] [--events 10000000]
        [--connections 64] [--duration 30] [--keep] [--reuse DATABASE_URL]

1. Makes a fresh PostgreSQL database, migrates it with ``shared.migrate`` and loads ``--shipments``
   shipments with ``--events`` events by asyncpg COPY (``bench/tracking_data.py``: legs, numbers
   and derived state as the consumer writes them; two in three shipments that reached the last
   mile have a second, linked number), then rebuilds the indexes and analyses. Prints the load time.
2. Starts the real API role (``python -m services.cli run api``, settings by environment) and asks
   it for a sample of numbers, checking each answer (200, the public shape, no merchant data).
3. Starts a bare FastAPI app (same uvicorn settings) that returns those same JSON bodies from memory.
4. Drives each with ``--connections`` concurrent clients from a separate process (``wrk`` when
   installed, else an aiohttp client script) over random numbers: for the API, first-leg and
   linked last-mile numbers drawn from all shipments; for the baseline, the sampled numbers.
   Each run has a warm-up first. Prints requests/s, p50/p99 and the ratio API / baseline, and the
   CPU each party used.

``--reuse URL`` skips 1 and uses a database loaded before (``--keep`` keeps the one it made).
``--api-env K=V`` passes extra settings to the API process (e.g. to compare configurations);
``--api-root DIR`` runs the API from another source tree (``git archive <commit> | tar -x -C DIR``)
with the same interpreter, to measure an older commit the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from bench import infra  # noqa: E402
from bench.machine import ROOT, CpuMeter, describe, rss_mib  # noqa: E402
from bench.tracking_data import first_number, has_last_mile, last_number, load  # noqa: E402
from shared.migrate import upgrade_async  # noqa: E402

BASELINE = r"""
import json, sys
import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

bodies = {k: v.encode() for k, v in json.load(open(sys.argv[1])).items()}
app = FastAPI()

@app.get("/v1/tracking/{tracking_number}")
async def track(tracking_number: str) -> Response:
    body = bodies.get(tracking_number)
    if body is None:
        return Response(b'{"status":404}', status_code=404, media_type="application/problem+json")
    return Response(body, media_type="application/json")

@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""

WRK_SCRIPT = r"""
local numbers = {}
for line in io.lines(os.getenv("NUMBERS_FILE")) do numbers[#numbers + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  return wrk.format("GET", "/v1/tracking/" .. numbers[math.random(#numbers)])
end
"""

# The fallback load generator: the same closed loop as wrk, in its own process.
PYLOAD = r"""
import asyncio, json, random, sys, time
import aiohttp
base, numbers_file, conns, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
numbers = open(numbers_file).read().split()
async def main():
    lat, bad = [], 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as s:
        end = time.perf_counter() + duration
        async def worker():
            nonlocal bad
            while time.perf_counter() < end:
                t = time.perf_counter()
                async with s.get(base + "/v1/tracking/" + random.choice(numbers)) as r:
                    await r.read()
                    bad += r.status != 200
                lat.append(time.perf_counter() - t)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        wall = time.perf_counter() - t0
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    print(json.dumps({"rps": len(lat) / wall, "p50": q(0.5), "p99": q(0.99), "n": len(lat),
                      "errors": bad}))
asyncio.run(main())
"""


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu: str
    rss_mib: float


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shipments", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--jobs", type=int, default=2, help="loader processes")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before each run")
    parser.add_argument("--sample", type=int, default=5000, help="numbers the baseline serves")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--reuse", metavar="DATABASE_URL", help="a database loaded before")
    parser.add_argument("--api-env", action="append", default=[], metavar="K=V")
    parser.add_argument(
        "--api-root", type=Path, default=ROOT,
        help="run the API from this source tree (e.g. an exported older commit, for a before/after)",
    )  # fmt: skip
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--rounds", type=int, default=2, help="baseline/API pairs, interleaved")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    return asyncio.run(run(args))


async def run(args: argparse.Namespace) -> int:
    print(describe())
    admin = infra.pg_admin_url()
    url = args.reuse
    made = False
    if url is None:
        url = await infra.create_database(admin)
        made = True
        await upgrade_async(url)
        print(f"loading {args.shipments:,} shipments, {args.events:,} events into "
              f"{url.rsplit('/', 1)[1]} ({args.jobs} loader processes)")  # fmt: skip
        started = time.perf_counter()
        t = await load(infra.asyncpg_dsn(url), args.shipments, args.events, args.jobs)
        total = time.perf_counter() - started
        print(f"load: {t['events']:,} events in {total:.0f} s (COPY {t['copy_s']:.0f} s, "
              f"{t['events'] / t['copy_s']:,.0f} events/s; indexes {t['index_s']:.0f} s; "
              f"vacuum+analyze {t['vacuum_s']:.0f} s)")  # fmt: skip
    print(await _sizes(url))
    tmp = Path(tempfile.mkdtemp(prefix="tl-query-"))
    try:
        return await _measure(args, url, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if made and not args.keep:
            await infra.drop_database(admin, url)
        elif made:
            print(f"kept database: {url}")


async def _measure(args: argparse.Namespace, url: str, tmp: Path) -> int:
    shipments, events = await _counts(url)
    rng = random.Random(7)
    numbers = _numbers(rng, shipments, events, 100_000)
    numbers_file = tmp / "numbers.txt"
    numbers_file.write_text("\n".join(numbers) + "\n")
    (tmp / "wrk.lua").write_text(WRK_SCRIPT)
    loadgen = _loadgen(args.loadgen)
    print(f"load generator: {loadgen}, {args.connections} connections, "
          f"{args.warmup:g} s warm-up + {args.duration:g} s per run; "
          f"API numbers: {len(numbers):,} random of both kinds")  # fmt: skip

    api_port = _free_port()
    env = {
        **os.environ,
        "THROUGHLINE_DATABASE_URL": url,
        "THROUGHLINE_BUS": "sql",
        "THROUGHLINE_API_PORT": str(api_port),
        "THROUGHLINE_PUBLIC_RATE_PER_MINUTE": str(10**9),
        "THROUGHLINE_LOG_LEVEL": "WARNING",
        **dict(kv.split("=", 1) for kv in args.api_env),
    }
    command = [sys.executable, "-m", "services.cli", "run", "api"]
    api = subprocess.Popen(command, env=env, cwd=args.api_root)  # noqa: ASYNC220 - set-up
    try:
        base = f"http://127.0.0.1:{api_port}"
        await _wait_up(base)
        sample = numbers[: args.sample]
        bodies = await _fetch_checked(base, sample)
        bodies_file = tmp / "bodies.json"
        bodies_file.write_text(json.dumps(bodies))
        sample_file = tmp / "sample.txt"
        sample_file.write_text("\n".join(sample) + "\n")
        sizes = sorted(len(b) for b in bodies.values())
        print(f"checked {len(bodies):,} answers: 200, public shape, no merchant data; body "
              f"median {sizes[len(sizes) // 2]} bytes")  # fmt: skip

        baselines: list[Run] = []
        apis: list[Run] = []
        for n in range(1, args.rounds + 1):  # interleaved: the machine's load shifts over time
            if not args.skip_baseline:
                baselines.append(_baseline(args, loadgen, bodies_file, sample_file))
                _print(f"round {n} (a) bare FastAPI, JSON from memory", baselines[-1])
            apis.append(_drive(args, loadgen, base, numbers_file, [api.pid]))
            _print(f"round {n} (b) API role, PostgreSQL", apis[-1])
        if baselines:
            for n, (a, b) in enumerate(zip(baselines, apis, strict=True), 1):
                print(f"round {n}: ratio API / baseline {b.rps / a.rps:.2f}")
            a_rps = _median([r.rps for r in baselines])
            b_rps = _median([r.rps for r in apis])
            b_p99 = _median([r.p99_ms for r in apis])
            print(f"median: baseline {a_rps:.0f}/s, API {b_rps:.0f}/s, ratio {b_rps / a_rps:.2f} "
                  f"(goal >= 0.5); API p99 {b_p99:.1f} ms (goal <= 20 ms)")  # fmt: skip
    finally:
        api.terminate()
        api.wait(timeout=30)
    return 0


def _baseline(args: argparse.Namespace, loadgen: str, bodies: Path, sample: Path) -> Run:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", BASELINE, str(bodies), str(port)], cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_up_sync(base)
        return _drive(args, loadgen, base, sample, [proc.pid])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _drive(
    args: argparse.Namespace, loadgen: str, base: str, numbers: Path, server: list[int]
) -> Run:
    _loadrun(loadgen, base, numbers, args.connections, args.warmup)
    meter = CpuMeter(clients=server)
    meter.start()
    result = _loadrun(loadgen, base, numbers, args.connections, args.duration)
    meter.stop()
    r = meter.result
    cpu = (f"server {r['client'] / r['wall']:.2f} cores, PostgreSQL "
           f"{r['postgres'] / r['wall']:.2f}")  # fmt: skip
    return Run(**result, cpu=cpu, rss_mib=sum(rss_mib(p) for p in server))


def _loadrun(loadgen: str, base: str, numbers: Path, conns: int, seconds: float) -> dict:
    if loadgen == "wrk":
        out = subprocess.run(
            ["wrk", "-t2", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency",
             "-s", str(numbers.parent / "wrk.lua"), base],
            capture_output=True, text=True, check=True,
            env={**os.environ, "NUMBERS_FILE": str(numbers)},
        ).stdout  # fmt: skip
        return _parse_wrk(out)
    out = subprocess.run(
        [sys.executable, "-c", PYLOAD, base, str(numbers), str(conns), str(seconds)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    d = json.loads(out)
    return {"rps": d["rps"], "p50_ms": d["p50"], "p99_ms": d["p99"], "requests": d["n"],
            "errors": d["errors"]}  # fmt: skip


def _parse_wrk(out: str) -> dict:
    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise RuntimeError(f"no {label} in wrk output:\n{out}")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    n = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, errs.groups())) if errs else 0)
    return {"rps": rps, "p50_ms": ms("50%"), "p99_ms": ms("99%"), "requests": n, "errors": errors}


def _print(label: str, r: Run) -> None:
    print(f"{label:<46} {r.rps:8.0f} requests/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
          f"({r.requests:,} requests, {r.errors} errors; {r.cpu}; server RSS {r.rss_mib:.0f} MiB)")  # fmt: skip


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _loadgen(choice: str) -> str:
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    return choice


def _numbers(rng: random.Random, shipments: int, events: int, n: int) -> list[str]:
    """Half first-leg numbers, half linked last-mile numbers, of random shipments."""
    out: list[str] = []
    while len(out) < n:
        i = rng.randrange(shipments)
        if len(out) % 2 == 0:
            out.append(first_number(i)[1])
        elif has_last_mile(i, shipments, events):
            out.append(last_number(i)[1])
    return out


async def _counts(url: str) -> tuple[int, int]:
    import asyncpg

    conn = await asyncpg.connect(infra.asyncpg_dsn(url))
    try:
        s = await conn.fetchval("SELECT count(*) FROM shipment")
        e = await conn.fetchval(
            "SELECT reltuples::bigint FROM pg_class WHERE relname = 'tracking_event'"
        )
        return int(s), int(e)
    finally:
        await conn.close()


async def _sizes(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(infra.asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            """SELECT relname, reltuples::bigint AS n, pg_total_relation_size(oid) AS bytes
               FROM pg_class WHERE relname IN ('shipment', 'leg', 'tracking_event')
               ORDER BY relname"""
        )
        return "database: " + ", ".join(
            f"{r['relname']} {r['n']:,} rows {r['bytes'] / 2**30:.2f} GiB" for r in rows
        )
    finally:
        await conn.close()


async def _fetch_checked(base: str, numbers: list[str]) -> dict[str, str]:
    bodies: dict[str, str] = {}
    queue = iter(numbers)
    async with aiohttp.ClientSession() as s:

        async def worker() -> None:
            for number in queue:
                async with s.get(f"{base}/v1/tracking/{number}") as r:
                    text = await r.text()
                    assert r.status == 200, (number, r.status, text[:300])
                body = json.loads(text)
                assert set(body) == {
                    "tracking_number",
                    "status",
                    "substatus",
                    "last_event_at",
                    "next_step",
                    "customs",
                    "legs",
                    "modules",
                }, body
                assert [m["module"] for m in body["modules"]] == [
                    "origin",
                    "international",
                    "destination",
                ]
                assert any(m["events"] for m in body["modules"]), number
                assert "ORDER-" not in text and "tenant" not in text, number
                bodies[number] = text

        await asyncio.gather(*(worker() for _ in range(16)))
    return bodies


async def _wait_up(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{base} did not come up")
            await asyncio.sleep(0.2)


def _wait_up_sync(base: str, timeout: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base} did not come up")
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())

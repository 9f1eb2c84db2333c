"""Scale-out: the same ingest with 1 and with 2 timeline-consumer processes, and their memory.

    .venv/bin/python bench/scaling.py --events 100000 [--processes 1 2]

For each process count: a fresh PostgreSQL database (migrated), a fresh topic with 4 partitions
(random prefix, so a fresh consumer group too) holding the events, then that many real
``python -m services.cli run timeline-consumer`` processes (THROUGHLINE_* pointing at them) until
every event is stored. Prints events/s (from the first stored event to the last, and from the
processes' start), the ratio to one process, and each process's resident set size (VmRSS) at
steady state (the samples taken between 20 % and 100 % of the ingest).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from bench import infra  # noqa: E402
from bench.machine import CpuMeter, describe, rss_mib  # noqa: E402
from bench.workload import generate  # noqa: E402
from shared.bus import OutRecord  # noqa: E402
from shared.bus.kafka import KafkaBus  # noqa: E402
from shared.migrate import upgrade_async  # noqa: E402
from shared.schema import ALL_TOPICS, TOPIC_EVENTS  # noqa: E402


@dataclass
class Result:
    processes: int
    steady_rate: float
    overall_rate: float
    first_s: float
    rss: dict[int, list[float]] = field(default_factory=dict)
    cpu: str = ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--order", choices=("time", "shipment"), default="time")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per run")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up as on Ctrl-C
    return asyncio.run(run(args))


async def run(args: argparse.Namespace) -> int:
    print(describe())
    workload = generate(args.events, order=args.order)
    records = workload.records()
    print(f"workload: {args.events} events, {len(workload.shipments)} shipments, "
          f"ordered by {args.order}, {args.partitions} partitions")  # fmt: skip
    results = []
    for processes in args.processes:
        result = await _one(args, records, processes)
        results.append(result)
        _print(result, results[0])
    return 0


async def _one(args: argparse.Namespace, records: list[OutRecord], processes: int) -> Result:
    admin_url, bootstrap = infra.pg_admin_url(), infra.kafka_bootstrap()
    prefix = f"scale{uuid.uuid4().hex[:8]}."
    url = await infra.create_database(admin_url)
    workdir = Path(tempfile.mkdtemp(prefix="tl-scale-"))
    try:
        await upgrade_async(url)
        bus = KafkaBus(bootstrap, partitions=args.partitions)
        await bus.create_topics([f"{prefix}{t}" for t in ALL_TOPICS])
        await infra.produce(bootstrap, f"{prefix}{TOPIC_EVENTS}", records)
        await infra.checkpoint(url)
        env = {
            **os.environ,
            "THROUGHLINE_DATABASE_URL": url,
            "THROUGHLINE_BUS": "kafka",
            "THROUGHLINE_KAFKA_BOOTSTRAP": bootstrap,
            "THROUGHLINE_TOPIC_PREFIX": prefix,
            "THROUGHLINE_TOPIC_PARTITIONS": str(args.partitions),
            "THROUGHLINE_LOG_LEVEL": "WARNING",
            "THROUGHLINE_LOG_JSON": "true",
        }
        return await _measure(args, url, env, workdir, processes)
    finally:
        await infra.drop_database(admin_url, url)
        await infra.delete_topics(bootstrap, prefix)


async def _measure(
    args: argparse.Namespace, url: str, env: dict[str, str], workdir: Path, processes: int
) -> Result:
    n = args.events
    logs = [workdir / f"consumer-{i}.log" for i in range(processes)]
    procs = [_spawn(env, workdir, log) for log in logs]
    meter = CpuMeter(clients=[p.pid for p in procs])
    meter.start()
    started = time.perf_counter()
    rss: dict[int, list[float]] = {p.pid: [] for p in procs}
    first_t, first_n = 0.0, 0
    conn = await asyncpg.connect(infra.asyncpg_dsn(url))
    try:
        while (stored := await infra.count_events(conn)) < n:
            now = time.perf_counter() - started
            if stored and not first_t:
                first_t, first_n = now, stored
            if stored >= 0.2 * n:
                for p in procs:
                    rss[p.pid].append(rss_mib(p.pid))
            for p, log in zip(procs, logs, strict=True):
                if p.poll() is not None:
                    raise RuntimeError(f"consumer exited with {p.returncode}: {_tail(log)}")
            if now > args.timeout:
                raise TimeoutError(f"{stored}/{n} stored after {now:.0f} s: {_tail(logs[0])}")
            await asyncio.sleep(0.5)
        done = time.perf_counter() - started
        meter.stop()
    finally:
        await conn.close()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    steady = (n - first_n) / (done - first_t) if done > first_t else float("nan")
    return Result(processes, steady, n / done, first_t, rss, meter.line())


def _spawn(env: dict[str, str], workdir: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "timeline-consumer"],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _print(result: Result, base: Result) -> None:
    rss = ", ".join(
        f"pid {pid}: median {statistics.median(s):.0f} MiB, max {max(s):.0f} MiB"
        for pid, s in result.rss.items()
        if s
    )
    print(
        f"{result.processes} process(es): {result.steady_rate:,.0f} events/s from the first stored "
        f"event ({result.overall_rate:,.0f} events/s from process start; first event stored after "
        f"{result.first_s:.1f} s); ratio to 1 process {result.steady_rate / base.steady_rate:.2f}"
    )
    print(f"    RSS at steady state: {rss}")
    print(f"    CPU: {result.cpu}")


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-20:])


if __name__ == "__main__":
    raise SystemExit(main())

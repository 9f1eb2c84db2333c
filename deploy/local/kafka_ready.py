#!/usr/bin/env python3
"""Exit 0 once a Kafka broker answers a real metadata request listing at least one broker.

An open port is not readiness: a KRaft broker accepts connections before it has registered
with its controller. Used by deploy/local/kafka.sh; needs aiokafka.

    python deploy/local/kafka_ready.py --bootstrap 127.0.0.1:19092 --timeout 90 [--pid N]

Exit codes: 0 ready, 1 timed out, 2 the broker process (--pid) exited while we waited.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _probe(bootstrap: str) -> str | None:
    """One metadata round trip; returns a short description, or None if no broker is listed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    brokers = cluster.get("brokers") or []
    if not brokers:
        return None
    return f"{len(brokers)} broker(s), controller {cluster.get('controller_id')}"


async def _wait(bootstrap: str, patience_s: float, pid: int | None) -> int:
    deadline = time.monotonic() + patience_s
    last_error = "no attempt"
    while True:
        if not _alive(pid):
            print(f"kafka_ready: broker process {pid} exited", file=sys.stderr)
            return 2
        try:
            answer = await asyncio.wait_for(_probe(bootstrap), timeout=10)
        except Exception as exc:  # any failure means "not yet": retry until the deadline
            last_error = f"{type(exc).__name__}: {exc}"
        else:
            if answer is not None:
                print(f"kafka_ready: {bootstrap} answered metadata: {answer}")
                return 0
            last_error = "metadata lists no broker yet"
        if time.monotonic() >= deadline:
            print(f"kafka_ready: gave up after {patience_s:.0f}s: {last_error}", file=sys.stderr)
            return 1
        await asyncio.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--pid", type=int, default=None, help="stop waiting if this process exits")
    args = parser.parse_args()
    # aiokafka logs every refused connection at ERROR; while waiting those are expected.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    return asyncio.run(_wait(args.bootstrap, args.timeout, args.pid))


if __name__ == "__main__":
    sys.exit(main())

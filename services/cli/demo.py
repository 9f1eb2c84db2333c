"""``throughline demo``: the embedded default, the whole product in one process.

SQLite file + SQL-log bus + every service + the carrier simulator. The database, the demo tenant's
key and the simulated journeys' start times are kept, so a restart (or a crash) resumes where it was.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from services.carriers.fetchers import BASE_URL_SETTINGS
from services.cli.accounts import new_tenant
from services.cli.roles import run_all
from services.cli.runtime import runtime, stop_on_signals
from services.simulator.journeys import valid_dhl_express_number
from shared.migrate import upgrade_async
from shared.settings import Settings

# (journey, DHL number seed or None: the simulator mints the other carriers' numbers, reference)
SAMPLES = (
    ("epacket-china-us", None, "US-ORDER-2001"),
    ("fourpx-royal-mail", None, "GB-ORDER-2002"),
    ("dhl-express-door-to-door", 101, "DE-ORDER-1001"),
    ("ups-customs-duties", None, "US-ORDER-2003"),
    ("dhl-customs-hold", 102, "DE-ORDER-1002"),
    ("fedex-failed-attempt-pickup", None, "US-ORDER-2004"),
)


def demo_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    db = Path(args.db).resolve()
    sim = f"http://127.0.0.1:{args.simulator_port}"
    return settings.model_copy(
        update={
            "database_url": f"sqlite+aiosqlite:///{db}",
            "bus": "sql",
            "api_port": args.port,
            "simulator_port": args.simulator_port,
            **{name: sim for name in BASE_URL_SETTINGS.values()},  # every carrier's sandbox
            "public_base_url": f"http://127.0.0.1:{args.port}",
            "poll_interval_s": 3.0,
            "poll_min_interval_s": 1.0,
            "poll_tick_s": 0.5,
            "consumer_wait_ms": 100,
            "alert_scan_interval_s": 5.0,
            # A local receiver (e.g. docs/webhooks.md's) is the point of a demo endpoint.
            "webhook_allow_loopback": True,
        }
    )


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def run_demo(base: Settings, args: argparse.Namespace) -> int:
    settings = demo_settings(base, args)
    for port in (settings.api_port, settings.simulator_port):
        if not _port_free(port):
            print(f"port {port} is in use: stop what runs there or pass --port / --simulator-port")
            return 2
    state_file = Path(str(Path(args.db).resolve()) + ".demo.json")
    await upgrade_async(settings.database_url)
    state = await _load_state(settings, state_file)
    state["_file"] = str(state_file)
    stop = asyncio.Event()
    stop_on_signals(stop)
    async with runtime(settings) as rt:
        services = asyncio.create_task(run_all(rt, stop))
        try:
            if await _seed_unless_stopped(settings, state, stop):
                _print_welcome(settings, state)
                if args.exit_after is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), args.exit_after)
                    stop.set()
            await services
        finally:
            stop.set()
            if not services.done():
                await services
    return 0


async def _load_state(settings: Settings, path: Path) -> dict[str, Any]:
    if path.exists():
        state: dict[str, Any] = orjson.loads(path.read_bytes())
        return state
    tenant_id, key = await new_tenant(settings, "Demo merchant", ("merchant", "operator"))
    started = datetime.now(UTC).isoformat()
    state = {
        "tenant_id": str(tenant_id),
        "api_key": key,
        "journeys": [
            {
                "journey": j,
                "tracking_number": None if seed is None else valid_dhl_express_number(seed),
                "reference": ref,
                "started_at": started,
            }
            for j, seed, ref in SAMPLES
        ],
    }
    path.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))
    os.chmod(path, 0o600)
    return state


async def _seed_unless_stopped(
    settings: Settings, state: dict[str, Any], stop: asyncio.Event
) -> bool:
    """Seed the journeys; False when a stop signal shut the servers down while seeding."""
    try:
        await _seed(settings, state)
    except httpx.TransportError:
        if stop.is_set():
            return False
        raise
    return True


async def _seed(settings: Settings, state: dict[str, Any]) -> None:
    api = f"http://127.0.0.1:{settings.api_port}"
    sim = f"http://127.0.0.1:{settings.simulator_port}"
    async with httpx.AsyncClient(timeout=10) as client:
        await _wait_ready(client, f"{api}/healthz")
        await _wait_ready(client, f"{sim}/healthz")
        for j in state["journeys"]:
            resp = await client.post(
                f"{sim}/_sim/journeys",
                json={
                    "tracking_number": j["tracking_number"],
                    "journey": j["journey"],
                    "started_at": j["started_at"],
                },
            )
            resp.raise_for_status()
            first = resp.json()["legs"][0]
            j["tracking_number"], j["carrier"] = first["tracking_number"], first["carrier"]
            resp = await client.post(
                f"{api}/v1/shipments",
                headers={"Authorization": f"Bearer {state['api_key']}"},
                json={
                    "tracking_number": j["tracking_number"],
                    "carrier": j["carrier"],
                    "merchant_reference": j["reference"],
                },
            )
            resp.raise_for_status()
    # The minted numbers are kept, so a restart replays the same journeys under the same numbers.
    saved = {k: v for k, v in state.items() if k != "_file"}
    Path(state["_file"]).write_bytes(orjson.dumps(saved, option=orjson.OPT_INDENT_2))


async def _wait_ready(client: httpx.AsyncClient, url: str, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            if (await client.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"{url} did not become ready in {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


def _print_welcome(settings: Settings, state: dict[str, Any]) -> None:
    api = f"http://127.0.0.1:{settings.api_port}"
    first = state["journeys"][0]["tracking_number"]
    lines = [
        "",
        "Throughline demo is running (SQLite + SQL-log bus + simulator, one process).",
        f"  API docs          {api}/docs",
        f"  OpenAPI           {api}/openapi.json",
        f"  carrier sandbox   http://127.0.0.1:{settings.simulator_port}/_sim/journeys",
        f"  demo API key      {state['api_key']}  (scopes: merchant, operator)",
        f"  operators' page   {api}/ops  (sign in with the demo API key)",
        "",
        "Sample parcels (journeys play at one hour a second; reload to watch them move).",
        "Each opens the tracking page; the same timeline as JSON is at /v1/tracking/<number>:",
    ]
    for j in state["journeys"]:
        lines.append(
            f"  {j['tracking_number']:<20} {j['journey']:<28} {api}/t/{j['tracking_number']}"
        )
    lines += [
        "",
        "Try:",
        f"  curl -s {api}/v1/tracking/{first}",
        f"  curl -s -X POST {api}/v1/shipments -H 'Authorization: Bearer {state['api_key']}' \\",
        "       -H 'content-type: application/json' -d '{\"tracking_number\": \"1234567891\"}'",
        "",
        "Ctrl-C stops; running it again resumes from the same database.",
        "",
    ]
    print("\n".join(lines), flush=True)

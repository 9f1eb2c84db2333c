"""The README's demo command: from an empty folder to a non-empty timeline within a minute."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import Spawn, free_port, stop_process, wait_http


def test_demo_serves_a_timeline_within_a_minute(tmp_path: Path, spawn: Spawn) -> None:
    api_port, sim_port = free_port(), free_port()
    started = time.monotonic()
    proc = spawn(["demo", "--port", str(api_port), "--simulator-port", str(sim_port)], {}, "demo")
    api = f"http://127.0.0.1:{api_port}"
    wait_http(f"{api}/healthz", 60, proc)
    state_file = tmp_path / "throughline-demo.db.demo.json"
    numbers: list[str | None] = [None]
    for _ in range(300):  # the simulator mints some numbers while the demo seeds itself
        if state_file.exists():
            with contextlib.suppress(ValueError):
                numbers = [
                    j["tracking_number"] for j in json.loads(state_file.read_text())["journeys"]
                ]
        if numbers and all(numbers):
            break
        time.sleep(0.1)
    assert numbers and all(numbers), f"the demo did not record its sample numbers: {numbers}"

    events = 0
    while time.monotonic() - started < 60 and not events:
        r = httpx.get(f"{api}/v1/tracking/{numbers[0]}")
        if r.status_code == 200:
            events = sum(len(m["events"]) for m in r.json()["modules"])
        time.sleep(0.5)
    assert events > 0, "no events within a minute"

    # A crash loses nothing: kill it hard, start it again on the same file, the events are there.
    proc.kill()
    proc.wait()
    again = spawn(["demo", "--port", str(api_port), "--simulator-port", str(sim_port)], {}, "demo2")
    wait_http(f"{api}/healthz", 60, again)
    r = httpx.get(f"{api}/v1/tracking/{numbers[0]}")
    assert r.status_code == 200
    assert sum(len(m["events"]) for m in r.json()["modules"]) >= events
    log = tmp_path / "demo2.log"
    for _ in range(300):  # the welcome is printed once the sample parcels are seeded again
        if "Throughline demo is running" in log.read_text():
            break
        time.sleep(0.1)
    assert "Throughline demo is running" in log.read_text()
    # The welcome names the operators' console, and the demo key opens it.
    assert f"{api}/ops" in log.read_text()
    key = json.loads(state_file.read_text())["api_key"]
    assert key in log.read_text()
    assert httpx.get(f"{api}/ops").status_code == 200
    alerts = httpx.get(f"{api}/v1/alerts", headers={"Authorization": f"Bearer {key}"})
    assert alerts.status_code == 200 and "data" in alerts.json()
    stop_process(again)
    assert again.returncode == 0

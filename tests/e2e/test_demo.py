"""The README's demo command: from an empty folder to a non-empty timeline within a minute."""

from __future__ import annotations

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
    for _ in range(100):
        if state_file.exists():
            break
        time.sleep(0.1)
    numbers = [j["tracking_number"] for j in json.loads(state_file.read_text())["journeys"]]

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
    stop_process(again)
    assert again.returncode == 0
    assert "Throughline demo is running" in (tmp_path / "demo2.log").read_text()

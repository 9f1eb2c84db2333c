"""Every operation of the API's own OpenAPI document, fuzzed by schemathesis against the real app.

The app runs as ``throughline run api`` on the embedded stack (a migrated SQLite file, the SQL-log
bus) with a merchant key for the operations that need one. Every generated request must get an
answer that is not a 5xx and that conforms to the document: status code, content type, headers
and body schema. Examples are bounded (THROUGHLINE_FUZZ_EXAMPLES per operation, 40 by default)
so the file runs in a minute or two; raise it to search harder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import positive_data_acceptance

from tests.faults.servers import free_port

EXAMPLES = int(os.environ.get("THROUGHLINE_FUZZ_EXAMPLES", "40"))
# Server-Sent Events: a valid request is an endless stream, which a request/response fuzzer can
# only time out on. tests/integration/test_alerts_stream.py covers it (auth, resume, shutdown).
ENDLESS = {"GET /v1/alerts/stream"}


class Api:
    def __init__(self, base_url: str, key: str):
        self.base_url = base_url
        self.key = key


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"throughline {' '.join(args)}: {result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    workdir = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = {
        **os.environ,
        "THROUGHLINE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'fuzz.db'}",
        "THROUGHLINE_BUS": "sql",
        "THROUGHLINE_API_PORT": str(port),
        "THROUGHLINE_LOG_LEVEL": "WARNING",
        # The fuzzer sends hundreds of requests a minute with one key and one address.
        "THROUGHLINE_MERCHANT_RATE_PER_MINUTE": "1000000",
        "THROUGHLINE_MERCHANT_RATE_BURST": "100000",
        "THROUGHLINE_PUBLIC_RATE_PER_MINUTE": "1000000",
    }
    _cli(env, workdir, "migrate")
    out = _cli(env, workdir, "tenants", "create", "fuzz", "--scopes", "merchant,operator")
    match = re.search(r"api key (\S+)", out)
    assert match, out
    log = workdir / "api.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "api"],
            env=env, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"the api did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Api(base, match.group(1))
        print(f"api log tail:\n{log.read_text(errors='replace')[-1500:]}")
    finally:
        proc.terminate()
        proc.wait(30)
        errors = [
            line for line in log.read_text(errors="replace").splitlines() if '"error"' in line
        ]
        print(f"api log: {len(errors)} error lines")


def test_every_operation_answers_within_its_contract(api: Api) -> None:
    """One hypothesis run per operation; every failure of every operation is reported together."""
    loaded = schemathesis.openapi.from_url(f"{api.base_url}/openapi.json")
    failures: dict[str, str] = {}
    tried: dict[str, int] = {}
    for result in loaded.get_all_operations():
        operation = result.ok()
        label = operation.label
        if label in ENDLESS:
            continue
        tried[label] = 0

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
        )
        def run(case: schemathesis.Case) -> None:
            tried[case.operation.label] = tried.get(case.operation.label, 0) + 1
            case.call_and_validate(
                base_url=api.base_url,
                headers={"Authorization": f"Bearer {api.key}", "X-API-Key": api.key},
                timeout=30,
                # The document cannot say every rule a valid request meets (check digits of
                # tracking numbers, public http(s) webhook URLs, ...): a schema-valid request may
                # still get a 422, as long as that 422 is the documented problem document.
                excluded_checks=[positive_data_acceptance],
            )

        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - collected (failure groups too), reported below
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            failures[label] = str(exc)[:6000]
    report = os.environ.get("THROUGHLINE_FUZZ_REPORT")
    if report:
        Path(report).write_text("\n\n".join(f"== {k}\n{v}" for k, v in failures.items()))
    total = sum(tried.values())
    print(f"schemathesis: {len(tried)} operations, {total} requests generated")
    assert len(tried) >= 20, f"only {len(tried)} operations in the document"
    assert not failures, "\n\n".join(f"== {k}\n{v}" for k, v in failures.items())

"""DhlClient against the DHL simulator (the carrier's side) served through httpx.ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.carriers.adapters.dhl import DhlAdapter
from services.carriers.client import (
    CarrierUnavailable,
    DhlClient,
    FetchResult,
    backoff_delay,
    parse_retry_after,
)
from services.simulator.app import create_app
from services.simulator.journeys import valid_dhl_express_number
from shared.errors import InvalidInput, PayloadTooLarge, RetryableError
from shared.settings import Settings

BASE = "http://dhl.sim"
KEY = "test-dhl-key"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def http(clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(dhl_api_key=KEY, simulator_speed=3600.0), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


@pytest.fixture
def dhl(http: httpx.AsyncClient) -> DhlClient:
    return DhlClient(BASE, KEY, http=http)


async def start(
    http: httpx.AsyncClient, number: str, journey: str = "dhl-express-door-to-door"
) -> None:
    response = await http.post(
        "/_sim/journeys", json={"tracking_number": number, "journey": journey}
    )
    assert response.status_code == 201


async def fault(http: httpx.AsyncClient, **body: object) -> None:
    response = await http.post("/_sim/faults", json={"carrier": "dhl", **body})
    assert response.status_code == 200


async def test_200_answer_parses(http: httpx.AsyncClient, dhl: DhlClient, clock: FakeClock) -> None:
    number = valid_dhl_express_number(1)
    await start(http, number)
    clock.advance(20)  # 20 journey hours
    result = await dhl.fetch(number)
    assert isinstance(result, FetchResult)
    assert result.status_code == 200
    assert result.content_type.startswith("application/json")
    parsed = DhlAdapter().parse(result.body, requested=number, http_status=result.status_code)
    assert parsed.errors == []
    assert len(parsed.events) == 5
    assert {e.tracking_number for e in parsed.events} == {number}


async def test_404_problem_is_an_answer(dhl: DhlClient) -> None:
    result = await dhl.fetch("1234567891")
    assert result.status_code == 404
    assert result.content_type == "application/problem+json"
    (error,) = DhlAdapter().parse(result.body, requested="1234567891", http_status=404).errors
    assert error.code == "not_found"


async def test_wrong_key_gives_401_problem(http: httpx.AsyncClient) -> None:
    result = await DhlClient(BASE, "wrong", http=http).fetch("1234567891")
    assert result.status_code == 401
    (error,) = DhlAdapter().parse(result.body, requested="1234567891", http_status=401).errors
    assert error.code == "carrier_error" and "Unauthorized" in error.message


async def test_429_carries_retry_after(http: httpx.AsyncClient, dhl: DhlClient) -> None:
    number = valid_dhl_express_number(2)
    await start(http, number)
    await fault(http, mode="429", count=1, retry_after_s=7)
    with pytest.raises(CarrierUnavailable) as caught:
        await dhl.fetch(number)
    assert caught.value.retry_after == 7.0
    assert caught.value.status_code == 429
    assert isinstance(caught.value, RetryableError)
    assert (await dhl.fetch(number)).status_code == 200  # the fault was for one request


async def test_5xx_is_carrier_unavailable(http: httpx.AsyncClient, dhl: DhlClient) -> None:
    await fault(http, mode="5xx", count=2)
    for _ in range(2):
        with pytest.raises(CarrierUnavailable) as caught:
            await dhl.fetch("1234567891")
        assert caught.value.status_code == 503 and caught.value.retry_after is None
    assert (await dhl.fetch("1234567891")).status_code == 404


async def test_garbage_is_returned_for_the_parser(http: httpx.AsyncClient, dhl: DhlClient) -> None:
    await fault(http, mode="garbage", count=1)
    result = await dhl.fetch("1234567891")
    assert result.status_code == 200
    (error,) = DhlAdapter().parse(result.body, requested="1234567891").errors
    assert error.code == "malformed"


async def test_body_over_the_cap_is_refused(http: httpx.AsyncClient) -> None:
    number = valid_dhl_express_number(3)
    await start(http, number)
    small = DhlClient(BASE, KEY, http=http, max_body_bytes=200)
    with pytest.raises(PayloadTooLarge) as caught:
        await small.fetch(number)
    assert isinstance(caught.value, InvalidInput)


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
async def test_network_errors_are_carrier_unavailable(error: httpx.TransportError) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    async with httpx.AsyncClient(transport=httpx.MockTransport(fail)) as http:
        with pytest.raises(CarrierUnavailable) as caught:
            await DhlClient(BASE, KEY, http=http).fetch("1234567891")
    assert caught.value.retry_after is None


async def test_request_shape() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"shipments": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http:
        async with DhlClient(BASE + "/", KEY, http=http) as dhl:
            await dhl.fetch("JD 0146", service="express")
        assert not http.is_closed  # a client passed in belongs to the caller
    (request,) = seen
    assert request.url.path == "/track/shipments"
    assert request.url.params["trackingNumber"] == "JD 0146"
    assert request.url.params["service"] == "express"
    assert request.headers["DHL-API-Key"] == KEY


async def test_owned_client_is_closed() -> None:
    async with DhlClient(BASE, KEY) as dhl:
        owned = dhl._http
    assert owned.is_closed


def test_backoff_delay_bounds() -> None:
    assert backoff_delay(0, rng=lambda: 0.0) == 0.0
    assert backoff_delay(0, rng=lambda: 0.999) < 1.0
    assert backoff_delay(3, base=2.0, rng=lambda: 0.5) == 8.0  # half of 2 * 2**3
    assert backoff_delay(50, rng=lambda: 0.999) < 300.0  # capped
    assert backoff_delay(10_000, rng=lambda: 1.0) == 300.0  # no overflow
    assert backoff_delay(0, retry_after=30.0, rng=lambda: 0.5) == 30.0  # floor, above cap too
    assert backoff_delay(1, cap=5.0, retry_after=600.0, rng=lambda: 0.5) == 600.0


@given(attempt=st.integers(0, 200), retry_after=st.none() | st.floats(0, 3600), r=st.floats(0, 1))
def test_backoff_delay_properties(attempt: int, retry_after: float | None, r: float) -> None:
    delay = backoff_delay(attempt, retry_after=retry_after, rng=lambda: r)
    assert 0.0 <= delay <= max(min(300.0, 2.0**attempt), retry_after or 0.0)
    if retry_after is not None:
        assert delay >= retry_after


def test_parse_retry_after() -> None:
    now = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Mon, 10 Mar 2025 08:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 10 Mar 2025 07:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None

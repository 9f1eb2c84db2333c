"""The UPS, FedEx and Chinese cross-border poll clients against their carrier sandboxes, served
through httpx.ASGITransport, and their answers through the matching adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.carriers.adapters.base import Adapter
from services.carriers.adapters.cainiao import CainiaoAdapter
from services.carriers.adapters.fedex import FedexAdapter
from services.carriers.adapters.fourpx import FourPxAdapter
from services.carriers.adapters.sf_express import SfExpressAdapter
from services.carriers.adapters.ups import UpsAdapter
from services.carriers.adapters.yanwen import YanwenAdapter
from services.carriers.adapters.yunexpress import YunExpressAdapter
from services.carriers.client import CarrierUnavailable, FetchResult
from services.carriers.clients import cainiao as cainiao_client
from services.carriers.clients import fedex as fedex_client
from services.carriers.clients import fourpx as fourpx_client
from services.carriers.clients import sf_express as sf_client
from services.carriers.clients import ups as ups_client
from services.carriers.clients import yanwen as yanwen_client
from services.carriers.clients import yunexpress as yun_client
from services.carriers.clients.base import PollClient
from services.simulator.carriers import CarrierScript, ScriptState
from services.simulator.carriers import cainiao as cainiao_sim
from services.simulator.carriers import fedex as fedex_sim
from services.simulator.carriers import fourpx as fourpx_sim
from services.simulator.carriers import sf_express as sf_sim
from services.simulator.carriers import ups as ups_sim
from services.simulator.carriers import yanwen as yanwen_sim
from services.simulator.carriers import yunexpress as yun_sim
from shared.settings import Settings
from shared.taxonomy import Status

BASE = "http://express.sim"
NOW = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(days=20)
USPS_NUMBER = "9400111899562537866361"


@dataclass(frozen=True)
class Case:
    carrier: str
    number: str  # the number asked for
    sandbox: ModuleType
    adapter: Adapter
    script: Callable[[datetime], CarrierScript]
    client: Callable[[httpx.AsyncClient], PollClient]
    wrong: Callable[[httpx.AsyncClient], PollClient] | None  # None: no credentials to get wrong
    answered: str | None = None  # the number the events come under, if another
    final: Status = Status.DELIVERED

    def __str__(self) -> str:
        return self.carrier


CASES = [
    Case("ups", "1ZA9F3190412345670", ups_sim, UpsAdapter(),
         lambda t: ups_sim.demo_script("1ZA9F3190412345670", t),
         lambda h: ups_client.UpsClient(BASE, ups_client.DEMO_CLIENT_ID, ups_client.DEMO_CLIENT_SECRET, http=h),
         lambda h: ups_client.UpsClient(BASE, ups_client.DEMO_CLIENT_ID, "wrong", http=h)),
    Case("fedex", "794612345678", fedex_sim, FedexAdapter(),
         lambda t: fedex_sim.demo_script("794612345678", t),
         lambda h: fedex_client.FedexClient(BASE, fedex_client.DEMO_CLIENT_ID, fedex_client.DEMO_CLIENT_SECRET, http=h),
         lambda h: fedex_client.FedexClient(BASE, fedex_client.DEMO_CLIENT_ID, "wrong", http=h)),
    Case("4px", "4PX3002145678901CN", fourpx_sim, FourPxAdapter(),
         lambda t: fourpx_sim.demo_script("4PX3002145678901CN", t, USPS_NUMBER),
         lambda h: fourpx_client.FourPxClient(BASE, fourpx_client.DEMO_APP_KEY, fourpx_client.DEMO_APP_SECRET, http=h),
         lambda h: fourpx_client.FourPxClient(BASE, fourpx_client.DEMO_APP_KEY, "wrong", http=h)),
    Case("yanwen", "UG402177355CN", yanwen_sim, YanwenAdapter(),
         lambda t: yanwen_sim.demo_script("9200190255371234567891", t),
         lambda h: yanwen_client.YanwenClient(BASE, yanwen_client.DEMO_API_KEY, http=h),
         lambda h: yanwen_client.YanwenClient(BASE, "wrong", http=h),
         answered="9200190255371234567891"),
    Case("yunexpress", "YT2507012345678901", yun_sim, YunExpressAdapter(),
         lambda t: yun_sim.demo_script("FJ527319468GB", t),
         lambda h: yun_client.YunExpressClient(BASE, yun_client.DEMO_CUSTOMER_CODE, yun_client.DEMO_API_SECRET, http=h),
         lambda h: yun_client.YunExpressClient(BASE, yun_client.DEMO_CUSTOMER_CODE, "wrong", http=h)),
    Case("cainiao", "LP00683712345678", cainiao_sim, CainiaoAdapter(),
         lambda t: cainiao_sim.demo_script("LP00683712345678", t, "PQ4F6P0700012345028001M"),
         lambda h: cainiao_client.CainiaoClient(BASE, http=h),
         None),
    Case("sf-express", "SF144512345678", sf_sim, SfExpressAdapter(),
         lambda t: sf_sim.demo_script("SF144512345678", t),
         lambda h: sf_client.SfExpressClient(BASE, sf_client.DEMO_PARTNER_ID, sf_client.DEMO_CHECKWORD, http=h),
         lambda h: sf_client.SfExpressClient(BASE, sf_client.DEMO_PARTNER_ID, "wrong", http=h)),
]  # fmt: skip
IN_BODY_RATE_LIMIT = {"yunexpress", "sf-express"}  # they answer a rate limit inside HTTP 200


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Sandbox:
    state: ScriptState
    http: httpx.AsyncClient
    clock: Clock
    paths: list[str]


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    clock = Clock()
    state = ScriptState(clock=clock)
    app = FastAPI()
    for case in CASES:
        app.include_router(case.sandbox.router(state))
    paths: list[str] = []

    async def record(request: httpx.Request) -> None:
        paths.append(request.url.path)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE, event_hooks={"request": [record]}
    ) as http:
        yield Sandbox(state, http, clock, paths)


def register(sandbox: Sandbox, case: Case, started: datetime = STARTED) -> None:
    script = case.script(started)
    aliases = (case.number,) if script.tracking_number != case.number else ()
    sandbox.state.add(case.carrier, script, *aliases)


def parse(case: Case, result: FetchResult) -> Any:
    return case.adapter.parse(result.body, requested=case.number, http_status=result.status_code)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_answer_parses_into_the_whole_journey(sandbox: Sandbox, case: Case) -> None:
    register(sandbox, case)
    result = await case.client(sandbox.http).fetch(case.number)
    assert result.status_code == 200 and result.content_type.startswith("application/json")
    parsed = parse(case, result)
    assert parsed.errors == []
    current = [e for e in parsed.events if e.occurred_at_local and e.occurred_at_local >= "2025"]
    assert len(current) == len(case.script(STARTED).scans)  # repeats collapsed, nothing lost
    assert {e.tracking_number for e in current} == {case.answered or case.number}
    assert current[-1].status is case.final
    assert [e.sequence for e in current] == list(range(len(current)))


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_unknown_number_is_a_not_found_answer(sandbox: Sandbox, case: Case) -> None:
    register(sandbox, case)
    unknown = "UNKNOWN0000000000"
    result = await case.client(sandbox.http).fetch(unknown)
    assert result.status_code == 200  # every one of these carriers says so inside HTTP 200
    parsed = case.adapter.parse(result.body, requested=unknown, http_status=result.status_code)
    assert parsed.events == []
    assert [(e.tracking_number, e.code) for e in parsed.errors] == [(unknown, "not_found")]


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_journey_not_started_yet_is_not_found(sandbox: Sandbox, case: Case) -> None:
    register(sandbox, case, started=NOW + timedelta(hours=1))
    result = await case.client(sandbox.http).fetch(case.number)
    parsed = parse(case, result)
    if case.carrier == "fedex":  # the number's earlier shipment is all FedEx has to say
        assert parsed.errors == []
        assert {(e.occurred_at_local or "")[:4] for e in parsed.events} == {"2023"}
        return
    assert {e.code for e in parsed.errors} == {"not_found"}


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_429_is_carrier_unavailable(sandbox: Sandbox, case: Case) -> None:
    register(sandbox, case)
    sandbox.state.fail(case.carrier, 429, retry_after=7)
    with pytest.raises(CarrierUnavailable) as caught:
        await case.client(sandbox.http).fetch(case.number)
    if case.carrier not in IN_BODY_RATE_LIMIT:
        assert (caught.value.status_code, caught.value.retry_after) == (429, 7.0)
    assert (await case.client(sandbox.http).fetch(case.number)).status_code == 200


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_5xx_is_carrier_unavailable(sandbox: Sandbox, case: Case) -> None:
    register(sandbox, case)
    sandbox.state.fail(case.carrier, 503)
    with pytest.raises(CarrierUnavailable) as caught:
        await case.client(sandbox.http).fetch(case.number)
    assert caught.value.status_code == 503


@pytest.mark.parametrize("case", [c for c in CASES if c.wrong is not None], ids=str)
async def test_wrong_credentials_are_a_carrier_error(sandbox: Sandbox, case: Case) -> None:
    register(sandbox, case)
    assert case.wrong is not None
    result = await case.wrong(sandbox.http).fetch(case.number)
    parsed = parse(case, result)
    assert parsed.events == []
    assert [e.code for e in parsed.errors] == ["carrier_error"]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
async def test_network_errors_are_carrier_unavailable(
    case: Case, error: httpx.TransportError
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    async with httpx.AsyncClient(transport=httpx.MockTransport(fail)) as http:
        with pytest.raises(CarrierUnavailable):
            await case.client(http).fetch(case.number)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_from_settings_defaults_to_the_local_sandbox(case: Case) -> None:
    async with httpx.AsyncClient() as http:
        client_class = type(case.client(http))
    async with client_class.from_settings(Settings()) as client:  # type: ignore[attr-defined]
        assert client._base == "http://127.0.0.1:8100"


# --- OAuth ------------------------------------------------------------------------------------

OAUTH = {"ups": "/security/v1/oauth/token", "fedex": "/oauth/token"}


@pytest.mark.parametrize("case", [c for c in CASES if c.carrier in OAUTH], ids=str)
async def test_oauth_token_is_fetched_once_and_reused(sandbox: Sandbox, case: Case) -> None:
    register(sandbox, case)
    client = case.client(sandbox.http)
    for _ in range(3):
        assert (await client.fetch(case.number)).status_code == 200
    assert sandbox.paths.count(OAUTH[case.carrier]) == 1
    assert len(sandbox.paths) == 4


@pytest.mark.parametrize("case", [c for c in CASES if c.carrier in OAUTH], ids=str)
async def test_rejected_token_is_renewed_once(sandbox: Sandbox, case: Case) -> None:
    register(sandbox, case)
    client = case.client(sandbox.http)
    await client.fetch(case.number)
    other = case.client(sandbox.http)
    other._tokens.store("revoked-or-expired", 3600)  # type: ignore[attr-defined]
    assert (await other.fetch(case.number)).status_code == 200  # 401, one new token, retry
    assert sandbox.paths.count(OAUTH[case.carrier]) == 2


async def test_ups_request_carries_trans_id_and_transaction_src(sandbox: Sandbox) -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": "14399"})
        return httpx.Response(200, json={"trackResponse": {"shipment": []}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http:
        client = ups_client.UpsClient(BASE, "id", "secret", http=http)
        await client.fetch("1Z 999")
        await client.fetch("1Z 999")
    token, first, second = seen
    assert token.headers["Authorization"].startswith("Basic ")
    assert token.content == b"grant_type=client_credentials"
    assert first.url.raw_path.split(b"?")[0] == b"/api/track/v1/details/1Z%20999"
    assert first.headers["transactionSrc"] == "throughline"
    assert first.headers["transId"] != second.headers["transId"]
    assert first.url.params["locale"] == "en_US"


async def test_fedex_fetch_many_batches_thirty_numbers(sandbox: Sandbox) -> None:
    case = CASES[1]
    register(sandbox, case)
    numbers = [case.number] + [f"1000000000{i:02d}" for i in range(30)]
    client = case.client(sandbox.http)
    results = await fedex_client.FedexClient.fetch_many(client, numbers)  # type: ignore[arg-type]
    assert len(results) == 2 and sandbox.paths.count("/track/v1/trackingnumbers") == 2
    first = FedexAdapter().parse(results[0].body)
    assert {e.tracking_number for e in first.events} == {case.number}
    assert len(first.errors) == 29 and {e.code for e in first.errors} == {"not_found"}
    assert len(FedexAdapter().parse(results[1].body).errors) == 1


async def test_fedex_reused_number_answers_two_shipments(sandbox: Sandbox) -> None:
    case = CASES[1]
    register(sandbox, case)
    result = await case.client(sandbox.http).fetch(case.number)
    events = FedexAdapter().parse(result.body).events
    assert len(events) == 14 + 3
    assert len({e.event_id for e in events}) == 17
    label = events[0]
    assert (label.carrier_code, label.utc_offset, label.occurred_at) == ("OC", "-05:00", None)


# --- numbers that change -------------------------------------------------------------------------


async def test_yanwen_answers_with_the_asked_number_until_the_last_mile(sandbox: Sandbox) -> None:
    case = CASES[3]
    register(sandbox, case, started=NOW - timedelta(hours=70))  # in the air over the Pacific
    client = case.client(sandbox.http)
    early = parse(case, await client.fetch(case.number))
    assert {e.tracking_number for e in early.events} == {case.number}
    assert all(e.handoff is None for e in early.events)
    sandbox.clock.now = NOW + timedelta(days=5)
    late = parse(case, await client.fetch(case.number))
    assert {e.tracking_number for e in late.events} == {case.answered}
    handoffs = [e.handoff for e in late.events if e.handoff]
    assert [(h.carrier, h.tracking_number, h.evidence) for h in handoffs] == [
        ("usps", case.answered, "tracking_number")
    ]


@pytest.mark.parametrize(
    ("index", "carrier", "number"),
    [(2, "usps", USPS_NUMBER), (4, "royal-mail", "FJ527319468GB"), (5, "correos", "PQ4F6P0700012345028001M")],
)  # fmt: skip
async def test_hand_offs_come_through(
    sandbox: Sandbox, index: int, carrier: str, number: str
) -> None:
    case = CASES[index]
    register(sandbox, case)
    events = parse(case, await case.client(sandbox.http).fetch(case.number)).events
    assert [(e.handoff.carrier, e.handoff.tracking_number) for e in events if e.handoff] == [
        (carrier, number)
    ]


async def test_signed_requests_are_checked_by_the_sandbox(sandbox: Sandbox) -> None:
    """4PX's sign and SF's msgDigest change with the clock; the sandbox recomputes both."""
    for index in (2, 6):
        case = CASES[index]
        register(sandbox, case)
        client = case.client(sandbox.http)
        client._clock = lambda: 1_742_000_000.123  # type: ignore[attr-defined]
        assert parse(case, await client.fetch(case.number)).errors == []

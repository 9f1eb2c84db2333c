"""The postal poll clients against their carrier sandboxes, served through httpx.ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.carriers.adapters.australia_post import AustraliaPostAdapter
from services.carriers.adapters.base import Adapter
from services.carriers.adapters.canada_post import CanadaPostAdapter
from services.carriers.adapters.china_post import ChinaPostAdapter
from services.carriers.adapters.la_poste import LaPosteAdapter
from services.carriers.adapters.royal_mail import RoyalMailAdapter
from services.carriers.adapters.upu import UpuAdapter
from services.carriers.adapters.usps import UspsAdapter
from services.carriers.client import CarrierUnavailable, FetchResult
from services.carriers.clients import australia_post as ap_client
from services.carriers.clients import canada_post as cp_client
from services.carriers.clients import china_post as cn_client
from services.carriers.clients import la_poste as lp_client
from services.carriers.clients import royal_mail as rm_client
from services.carriers.clients import upu as upu_client
from services.carriers.clients import usps as usps_client
from services.carriers.clients.base import PollClient, basic_auth
from services.simulator.carriers import ScriptState
from services.simulator.carriers import australia_post as ap_sim
from services.simulator.carriers import canada_post as cp_sim
from services.simulator.carriers import china_post as cn_sim
from services.simulator.carriers import la_poste as lp_sim
from services.simulator.carriers import royal_mail as rm_sim
from services.simulator.carriers import upu as upu_sim
from services.simulator.carriers import usps as usps_sim
from shared.taxonomy import Status

BASE = "http://postal.sim"
NOW = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(days=20)


@dataclass(frozen=True)
class Case:
    carrier: str
    number: str
    sandbox: ModuleType
    adapter: Adapter
    client: Callable[[httpx.AsyncClient], PollClient]
    wrong: Callable[[httpx.AsyncClient], PollClient]
    answered: str | None = None  # the number the carrier answers with, if another

    def __str__(self) -> str:
        return self.carrier


CASES = [
    Case("upu", "LX123456785CN", upu_sim, UpuAdapter(),
         lambda h: upu_client.UpuClient(BASE, upu_client.DEMO_TOKEN, http=h),
         lambda h: upu_client.UpuClient(BASE, "wrong", http=h)),
    Case("china-post", "LX876543216CN", cn_sim, ChinaPostAdapter(),
         lambda h: cn_client.ChinaPostClient(BASE, cn_client.DEMO_TOKEN, http=h),
         lambda h: cn_client.ChinaPostClient(BASE, "wrong", http=h)),
    Case("usps", "LX123456785CN", usps_sim, UspsAdapter(),
         lambda h: usps_client.UspsClient(BASE, usps_client.DEMO_CLIENT_ID,
                                          usps_client.DEMO_CLIENT_SECRET, http=h),
         lambda h: usps_client.UspsClient(BASE, usps_client.DEMO_CLIENT_ID, "wrong", http=h)),
    Case("royal-mail", "LE223553042GB", rm_sim, RoyalMailAdapter(),
         lambda h: rm_client.RoyalMailClient(BASE, rm_client.DEMO_CLIENT_ID,
                                             rm_client.DEMO_CLIENT_SECRET, http=h),
         lambda h: rm_client.RoyalMailClient(BASE, rm_client.DEMO_CLIENT_ID, "wrong", http=h)),
    Case("la-poste", "6A18054880019", lp_sim, LaPosteAdapter(),
         lambda h: lp_client.LaPosteClient(BASE, lp_client.DEMO_API_KEY, http=h),
         lambda h: lp_client.LaPosteClient(BASE, "wrong", http=h)),
    Case("australia-post", "LZ404040403CN", ap_sim, AustraliaPostAdapter(),
         lambda h: ap_client.AustraliaPostClient(BASE, ap_client.DEMO_ACCOUNT,
                                                 ap_client.DEMO_API_KEY,
                                                 ap_client.DEMO_PASSWORD, http=h),
         lambda h: ap_client.AustraliaPostClient(BASE, ap_client.DEMO_ACCOUNT,
                                                 ap_client.DEMO_API_KEY, "wrong", http=h)),
    Case("canada-post", "1371134583769923", cp_sim, CanadaPostAdapter(),
         lambda h: cp_client.CanadaPostClient(BASE, cp_client.DEMO_USER,
                                              cp_client.DEMO_PASSWORD, http=h),
         lambda h: cp_client.CanadaPostClient(BASE, cp_client.DEMO_USER, "wrong", http=h)),
]  # fmt: skip


@pytest.fixture
def state() -> ScriptState:
    sandbox = ScriptState(clock=lambda: NOW)
    for case in CASES:
        sandbox.add(case.carrier, case.sandbox.demo_script(case.number, STARTED))
    return sandbox


@pytest.fixture
async def http(state: ScriptState) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    for case in CASES:
        app.include_router(case.sandbox.router(state))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


def read(case: Case, result: FetchResult, asked: str) -> Any:
    return case.adapter.parse(result.body, requested=asked, http_status=result.status_code)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_200_answer_parses_into_the_journey(case: Case, http: httpx.AsyncClient) -> None:
    async with case.client(http) as client:
        result = await client.fetch(case.number)
    assert result.status_code == 200
    parsed = read(case, result, case.number)
    assert parsed.errors == []
    assert len(parsed.events) >= 5
    assert {e.tracking_number for e in parsed.events} == {case.number}
    assert [e.sequence for e in parsed.events] == list(range(len(parsed.events)))
    assert parsed.events[-1].status is Status.DELIVERED
    assert {e.carrier for e in parsed.events} == {case.carrier}


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_unknown_number_is_a_not_found_answer(case: Case, http: httpx.AsyncClient) -> None:
    async with case.client(http) as client:
        result = await client.fetch("LX000000000CN")
    assert result.status_code in (200, 404)
    parsed = read(case, result, "LX000000000CN")
    assert parsed.events == []
    assert [e.code for e in parsed.errors] == ["not_found"]


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_wrong_credentials_are_a_carrier_error(case: Case, http: httpx.AsyncClient) -> None:
    async with case.wrong(http) as client:
        result = await client.fetch(case.number)
    assert result.status_code == 401
    parsed = read(case, result, case.number)
    assert parsed.events == []
    assert [e.code for e in parsed.errors] == ["carrier_error"]


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_429_carries_retry_after(
    case: Case, http: httpx.AsyncClient, state: ScriptState
) -> None:
    state.fail(case.carrier, 429, retry_after=7)
    async with case.client(http) as client:
        with pytest.raises(CarrierUnavailable) as caught:
            await client.fetch(case.number)
        assert (caught.value.status_code, caught.value.retry_after) == (429, 7.0)
        assert (await client.fetch(case.number)).status_code == 200  # one request only


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_is_carrier_unavailable(
    case: Case, status: int, http: httpx.AsyncClient, state: ScriptState
) -> None:
    state.fail(case.carrier, status)
    async with case.client(http) as client:
        with pytest.raises(CarrierUnavailable) as caught:
            await client.fetch(case.number)
    assert caught.value.status_code == status and caught.value.retry_after is None


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_network_errors_are_carrier_unavailable(case: Case) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(fail)) as http:
        with pytest.raises(CarrierUnavailable):
            await case.client(http).fetch(case.number)


# --- carrier specifics ---------------------------------------------------------------------------


async def test_usps_token_is_reused_then_renewed_after_a_401(http: httpx.AsyncClient) -> None:
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request.url.path)

    http.event_hooks["request"].append(record)
    client = usps_client.UspsClient(BASE, usps_client.DEMO_CLIENT_ID,
                                    usps_client.DEMO_CLIENT_SECRET, http=http)  # fmt: skip
    await client.fetch("LX123456785CN")
    await client.fetch("LX123456785CN")
    assert seen.count("/oauth2/v3/token") == 1
    client._tokens.store("revoked-token", 3600)
    assert (await client.fetch("LX123456785CN")).status_code == 200
    assert seen.count("/oauth2/v3/token") == 2


async def test_usps_refused_token_is_returned_for_the_adapter(http: httpx.AsyncClient) -> None:
    client = usps_client.UspsClient(BASE, "nobody", "nothing", http=http)
    result = await client.fetch("LX123456785CN")
    assert result.status_code == 401
    (error,) = UspsAdapter().parse(result.body, requested="X", http_status=401).errors
    assert "invalid_client" in error.message


async def test_usps_answers_with_the_pic_for_an_alias(
    http: httpx.AsyncClient, state: ScriptState
) -> None:
    pic = "9400111899223857456123"
    state.add("usps", usps_sim.demo_script(pic, STARTED), "420113759400111899223857456123")
    client = usps_client.UspsClient(BASE, usps_client.DEMO_CLIENT_ID,
                                    usps_client.DEMO_CLIENT_SECRET, http=http)  # fmt: skip
    result = await client.fetch("420113759400111899223857456123")
    parsed = UspsAdapter().parse(result.body, requested="420113759400111899223857456123")
    assert {e.tracking_number for e in parsed.events} == {pic}


async def test_australia_post_sandbox_stamps_its_offset_abroad(http: httpx.AsyncClient) -> None:
    client = ap_client.AustraliaPostClient(BASE, ap_client.DEMO_ACCOUNT, ap_client.DEMO_API_KEY,
                                           ap_client.DEMO_PASSWORD, http=http)  # fmt: skip
    parsed = AustraliaPostAdapter().parse((await client.fetch("LZ404040403CN")).body)
    (us_scan,) = [e for e in parsed.events if e.location and e.location.country == "US"]
    assert us_scan.utc_offset == "+11:00" and us_scan.occurred_at is None


async def test_royal_mail_sandbox_names_the_post_abroad(http: httpx.AsyncClient) -> None:
    client = rm_client.RoyalMailClient(BASE, rm_client.DEMO_CLIENT_ID,
                                       rm_client.DEMO_CLIENT_SECRET, http=http)  # fmt: skip
    parsed = RoyalMailAdapter().parse((await client.fetch("LE223553042GB")).body)
    handoffs = [e.handoff for e in parsed.events if e.handoff is not None]
    assert [(h.carrier, h.tracking_number) for h in handoffs] == [("la-poste", "LE223553042GB")]


async def test_upu_sandbox_relays_partner_scans_by_edi(http: httpx.AsyncClient) -> None:
    client = upu_client.UpuClient(BASE, upu_client.DEMO_TOKEN, http=http)
    parsed = UpuAdapter().parse((await client.fetch("LX123456785CN")).body)
    codes = [e.carrier_code for e in parsed.events]
    assert codes[:5] == ["EMA", "EMB", "EXA", "EXC", "EMC"] and codes[-1] == "EMI"
    (arrival,) = [e for e in parsed.events if e.carrier_code == "EMD"]
    assert arrival.utc_offset == "-04:00" and arrival.handoff is not None


async def test_canada_post_sandbox_wants_its_media_type(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/vis/track/pin/1371134583769923/detail",
        headers={"Authorization": basic_auth(cp_client.DEMO_USER, cp_client.DEMO_PASSWORD)},
    )
    assert response.status_code == 406


def test_from_settings_reads_optional_fields_with_simulator_defaults() -> None:
    class Partial:
        usps_base_url = "https://apis.usps.com"
        usps_client_id = ""  # blank: falls back too

    client = usps_client.UspsClient.from_settings(Partial())
    assert client._base == "https://apis.usps.com"
    assert client._credentials["client_id"] == usps_client.DEMO_CLIENT_ID
    classes: list[tuple[ModuleType, Any]] = [
        (upu_client, upu_client.UpuClient), (cn_client, cn_client.ChinaPostClient),
        (rm_client, rm_client.RoyalMailClient), (lp_client, lp_client.LaPosteClient),
        (ap_client, ap_client.AustraliaPostClient), (cp_client, cp_client.CanadaPostClient),
    ]  # fmt: skip
    for module, cls in classes:
        assert cls.from_settings(object())._base == "http://127.0.0.1:8100", module.__name__


async def test_owned_http_client_is_closed() -> None:
    async with lp_client.LaPosteClient(BASE, "k") as client:
        owned = client._http
    assert owned.is_closed

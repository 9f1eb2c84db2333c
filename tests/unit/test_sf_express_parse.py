"""SfExpressAdapter.parse against real-format route query answers: contracts §6.5."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.base import ParseResult
from services.carriers.adapters.sf_express import SfExpressAdapter
from shared.schema import TrackingEvent
from shared.taxonomy import Module, Status, Substatus, TimeBasis
from tests.unit.parse_checks import (
    assert_well_formed,
    check_hostile,
    corrupted_bytes,
    dumped,
    fixture,
    fixture_json,
    mutated_payloads,
)

ADAPTER = SfExpressAdapter()
NUMBER = "SF144512345678"
ENVELOPE = "routes_envelope.json"


def parse(body: bytes | dict[str, Any], **kwargs: Any) -> ParseResult:
    payload = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return ADAPTER.parse(payload, **kwargs)


def inner(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(fixture_json("sf_express", name)["apiResultData"])
    return doc


@pytest.fixture(scope="module")
def events() -> list[TrackingEvent]:
    result = parse(fixture("sf_express", ENVELOPE), requested=NUMBER)
    assert result.errors == []
    return result.events


def test_envelope_with_result_as_a_json_string(events: list[TrackingEvent]) -> None:
    assert {e.tracking_number for e in events} == {NUMBER}
    assert len(events) == 7  # the repeated arrival collapsed
    assert [e.sequence for e in events] == list(range(7))


def test_bare_service_document_parses_the_same() -> None:
    bare = parse(inner(ENVELOPE))
    assert bare.errors == []
    enveloped = parse(fixture("sf_express", ENVELOPE)).events
    assert [e.event_id for e in bare.events] == [e.event_id for e in enveloped]


def test_beijing_wall_time_without_offset(events: list[TrackingEvent]) -> None:
    first = events[0]
    assert (first.occurred_at_local, first.utc_offset) == ("2025-03-10T15:32:10", None)
    assert first.occurred_at == datetime(2025, 3, 10, 7, 32, 10, tzinfo=UTC)
    assert first.time_basis is TimeBasis.LOCATION_TIMEZONE
    assert first.location is not None and first.location.country == "CN"


def test_overseas_wall_time_stays_unknown() -> None:
    doc = inner(ENVELOPE)
    route = doc["msgData"]["routeResps"][0]["routes"][0]
    route["acceptAddress"] = "Los Angeles, CA, US"
    first = parse(doc).events[0]
    assert (first.occurred_at, first.time_basis) == (None, TimeBasis.UNKNOWN)


def test_statuses_from_remarks_and_codes(events: list[TrackingEvent]) -> None:
    assert [(e.carrier_code, e.status, e.substatus, e.module) for e in events] == [
        ("54", Status.IN_TRANSIT, Substatus.PICKED_UP, Module.ORIGIN),
        ("30", Status.IN_TRANSIT, Substatus.DEPARTED_HUB, None),
        ("31", Status.IN_TRANSIT, Substatus.ARRIVED_HUB, None),
        ("50", Status.OUT_FOR_DELIVERY, None, Module.DESTINATION),
        ("70", Status.FAILED_ATTEMPT, None, Module.DESTINATION),
        ("130", Status.AVAILABLE_FOR_PICKUP, None, Module.DESTINATION),  # unknown code: the remark
        ("80", Status.DELIVERED, None, Module.DESTINATION),
    ]


def test_remark_wins_over_a_disputed_code() -> None:
    doc = inner(ENVELOPE)
    doc["msgData"]["routeResps"][0]["routes"] = [
        {"acceptTime": "2025-03-10 15:32:10", "acceptAddress": "深圳市", "remark": "顺丰速运 已收取快件", "opCode": "50"},
        {"acceptTime": "2025-03-10 16:00:00", "acceptAddress": "深圳市", "remark": "", "opCode": "50"},
    ]  # fmt: skip
    pickup, bare_code = parse(doc).events
    assert (pickup.status, pickup.substatus) == (Status.IN_TRANSIT, Substatus.PICKED_UP)
    assert bare_code.status is Status.OUT_FOR_DELIVERY  # the contract's table when nothing is said


def test_english_remarks_and_hong_kong() -> None:
    result = parse(fixture("sf_express", "routes_bare_english_hk.json"))
    assert result.errors == []
    assert [e.status for e in result.events] == [
        Status.IN_TRANSIT, Status.IN_TRANSIT, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.DELIVERED,
    ]  # fmt: skip
    hong_kong = result.events[2]
    assert hong_kong.location is not None and hong_kong.location.country == "HK"
    assert hong_kong.substatus is Substatus.ARRIVED_DESTINATION_COUNTRY
    assert hong_kong.occurred_at == datetime(2025, 3, 13, 0, 5, tzinfo=UTC)


def test_couriers_signatories_and_phone_numbers_are_redacted(events: list[TrackingEvent]) -> None:
    text = dumped(ParseResult(events=events))
    for secret in ("李四", "王小明", "13912345678"):
        assert secret not in text, secret
    assert events[3].description == "快件交给[redacted]，正在派送途中（联系电话：[redacted]）"


def test_deterministic_ids(events: list[TrackingEvent]) -> None:
    again = parse(fixture("sf_express", ENVELOPE)).events
    assert [e.event_id for e in again] == [e.event_id for e in events]


def test_error_code_inside_200() -> None:
    (error,) = parse(fixture("sf_express", "error_inside_200.json"), requested=NUMBER).errors
    assert (error.tracking_number, error.code) == (NUMBER, "carrier_error")
    assert "8152" in error.message


def test_platform_error_inside_200() -> None:
    (error,) = parse(fixture("sf_express", "bad_signature.json"), requested=NUMBER).errors
    assert error.code == "carrier_error" and "A1006" in error.message


def test_unknown_number_has_empty_routes() -> None:
    (error,) = parse(
        fixture("sf_express", "unknown_number.json"), requested="SF100000000000"
    ).errors
    assert (error.tracking_number, error.code) == ("SF100000000000", "not_found")


@pytest.mark.parametrize(
    "body",
    [b"{}", b'{"apiResultCode": "A1000", "apiResultData": "{broken"}',
     b'{"apiResultCode": "A1000", "apiResultData": "[]"}', b'{"success": true, "msgData": {}}'],
)  # fmt: skip
def test_unexpected_shapes(body: bytes) -> None:
    result = parse(body, requested=NUMBER)
    assert result.events == [] and {e.code for e in result.errors} == {"malformed"}


DOCS = [
    fixture_json("sf_express", ENVELOPE),
    inner(ENVELOPE),
    fixture_json("sf_express", "routes_bare_english_hk.json"),
]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads(DOCS), status=st.sampled_from([200, 200, 200, 500]))
def test_never_raises_on_mutated_payloads(payload: bytes, status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER, http_status=status))


@settings(max_examples=150, deadline=None)
@given(payload=corrupted_bytes([fixture("sf_express", ENVELOPE)]))
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER))


def test_never_raises_on_hostile_payloads() -> None:
    check_hostile(lambda p: ADAPTER.parse(p, requested=NUMBER))
    nested = {"apiResultCode": "A1000", "apiResultData": "[" * 50_000}
    assert_well_formed(parse(nested))

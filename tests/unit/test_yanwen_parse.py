"""YanwenAdapter.parse against real-format tracking API payloads: contracts §6.4."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.base import ParseResult
from services.carriers.adapters.yanwen import YanwenAdapter
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

ADAPTER = YanwenAdapter()
ASKED, LAST_MILE, MISSING = "UG402177355CN", "9200190255371234567891", "UG000000005CN"
BATCH = "last_mile_number_and_notfound.json"


def parse(body: bytes | dict[str, Any], **kwargs: Any) -> ParseResult:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ADAPTER.parse(payload, **kwargs)


@pytest.fixture(scope="module")
def result() -> ParseResult:
    return parse(fixture("yanwen", BATCH), requested=f"{ASKED},{MISSING}")


@pytest.fixture(scope="module")
def events(result: ParseResult) -> list[TrackingEvent]:
    return result.events


def test_events_are_under_the_returned_last_mile_number(events: list[TrackingEvent]) -> None:
    assert len(events) == 10  # the repeated checkpoint collapsed
    assert {e.tracking_number for e in events} == {LAST_MILE}
    assert [e.sequence for e in events] == list(range(10))


def test_the_returned_number_is_a_hand_off(events: list[TrackingEvent]) -> None:
    handed = [e for e in events if e.handoff is not None]
    assert [e.carrier_code for e in handed] == ["LM10"]  # the first last-mile checkpoint
    handoff = handed[0].handoff
    assert handoff is not None
    assert handoff.tracking_number == LAST_MILE
    assert handoff.evidence == "tracking_number"
    assert handoff.carrier == "usps"  # named by the checkpoint text


def test_no_hand_off_when_the_number_asked_comes_back() -> None:
    doc = fixture_json("yanwen", BATCH)
    doc["result"] = doc["result"][:1]
    doc["result"][0]["tracking_number"] = ASKED
    assert all(e.handoff is None for e in parse(doc, requested=ASKED).events)


def test_notfound_inside_200_is_an_error_for_the_number_asked(result: ParseResult) -> None:
    (error,) = result.errors
    assert (error.tracking_number, error.code) == (MISSING, "not_found")


def test_time_zone_field_gives_the_offset(events: list[TrackingEvent]) -> None:
    pickup = events[0]
    assert (pickup.occurred_at_local, pickup.utc_offset) == ("2025-03-10T10:02:11", "+08:00")
    assert pickup.occurred_at == datetime(2025, 3, 10, 2, 2, 11, tzinfo=UTC)
    assert pickup.time_basis is TimeBasis.CARRIER_OFFSET


def test_plus_eight_on_a_us_delivery_is_not_trusted(events: list[TrackingEvent]) -> None:
    delivered = events[-1]
    assert delivered.location is not None and delivered.location.country == "US"
    assert (delivered.occurred_at_local, delivered.utc_offset) == ("2025-03-15T13:41:00", "+08:00")
    assert (delivered.occurred_at, delivered.time_basis) == (None, TimeBasis.UNKNOWN)


def test_v2_timestamps_with_offset_and_two_digit_fractions() -> None:
    doc = fixture_json("yanwen", BATCH)
    checkpoint = doc["result"][0]["checkpoints"][0]
    checkpoint["time_stamp"] = "2025-03-10T10:02:11.25+08:00"
    del checkpoint["time_zone"]
    first = parse(doc, requested=ASKED).events[0]
    assert first.occurred_at == datetime(2025, 3, 10, 2, 2, 11, 250000, tzinfo=UTC)
    assert first.occurred_at_local == "2025-03-10T10:02:11.250000"


def test_statuses_substatuses_and_modules(events: list[TrackingEvent]) -> None:
    assert [(e.carrier_code, e.status, e.substatus, e.module) for e in events] == [
        ("PU10", Status.IN_TRANSIT, Substatus.PICKED_UP, Module.ORIGIN),
        ("SC10", Status.IN_TRANSIT, Substatus.ARRIVED_HUB, Module.ORIGIN),
        ("SC20", Status.IN_TRANSIT, Substatus.DEPARTED_HUB, Module.ORIGIN),
        ("CC10", Status.IN_TRANSIT, Substatus.EXPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        ("LH10", Status.IN_TRANSIT, Substatus.DEPARTED_ORIGIN_COUNTRY, Module.INTERNATIONAL),
        ("LH20", Status.IN_TRANSIT, Substatus.ARRIVED_DESTINATION_COUNTRY, Module.INTERNATIONAL),
        ("CC30", Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        ("LM10", Status.IN_TRANSIT, Substatus.HANDED_OVER, Module.DESTINATION),
        ("LM20", Status.OUT_FOR_DELIVERY, None, Module.DESTINATION),
        ("LM40", Status.DELIVERED, None, Module.DESTINATION),
    ]


def test_origin_side_code_is_not_turned_into_a_delivery_by_its_text() -> None:
    doc = fixture_json("yanwen", BATCH)
    doc["result"][0]["checkpoints"][1]["message"] = "Delivered to Yanwen sorting center"
    event = parse(doc, requested=ASKED).events[1]
    assert (event.status, event.module) == (Status.IN_TRANSIT, Module.ORIGIN)


def test_no_personal_data(result: ParseResult) -> None:
    assert "finch" not in dumped(result)


def test_bad_key_is_a_carrier_error() -> None:
    (error,) = parse(fixture("yanwen", "unauthorized.json"), requested=ASKED).errors
    assert (error.tracking_number, error.code) == (ASKED, "carrier_error")
    assert "1001" in error.message


@pytest.mark.parametrize("body", [b"{}", b'{"code": 0}', b'{"code": 0, "result": {}}'])
def test_unexpected_shapes(body: bytes) -> None:
    result = parse(body, requested=ASKED)
    assert result.events == [] and result.errors


DOCS = [fixture_json("yanwen", BATCH)]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads(DOCS), status=st.sampled_from([200, 200, 200, 401, 500]))
def test_never_raises_on_mutated_payloads(payload: bytes, status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=f"{ASKED},{MISSING}", http_status=status))


@settings(max_examples=150, deadline=None)
@given(payload=corrupted_bytes([fixture("yanwen", BATCH)]))
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=ASKED))


def test_never_raises_on_hostile_payloads() -> None:
    check_hostile(lambda p: ADAPTER.parse(p, requested=ASKED))

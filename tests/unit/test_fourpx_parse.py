"""FourPxAdapter.parse against real-format tr.order.tracking.get payloads: contracts §6.2."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.base import ParseResult
from services.carriers.adapters.fourpx import FourPxAdapter
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

ADAPTER = FourPxAdapter()
NUMBER = "4PX3002145678901CN"
JOURNEY = "cn_us_last_mile_usps.json"


def parse(body: bytes | dict[str, Any], **kwargs: Any) -> ParseResult:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ADAPTER.parse(payload, **kwargs)


@pytest.fixture(scope="module")
def events() -> list[TrackingEvent]:
    result = parse(fixture("fourpx", JOURNEY), requested=NUMBER)
    assert result.errors == []
    return result.events


def test_newest_first_list_becomes_journey_order_without_the_repeat(
    events: list[TrackingEvent],
) -> None:
    assert len(fixture_json("fourpx", JOURNEY)["data"]["trackingList"]) == 11
    assert [e.sequence for e in events] == list(range(10))
    assert events[0].description == "Parcel information received"
    assert events[-1].status is Status.DELIVERED
    assert {e.tracking_number for e in events} == {NUMBER}


def test_wall_time_without_offset(events: list[TrackingEvent]) -> None:
    shenzhen, hong_kong, los_angeles = events[0], events[3], events[5]
    assert (shenzhen.occurred_at_local, shenzhen.utc_offset) == ("2025-03-10T09:15:00", None)
    assert shenzhen.occurred_at == datetime(2025, 3, 10, 1, 15, tzinfo=UTC)
    assert shenzhen.time_basis is TimeBasis.LOCATION_TIMEZONE
    assert hong_kong.occurred_at == datetime(2025, 3, 11, 12, 30, tzinfo=UTC)
    assert los_angeles.occurred_at_local == "2025-03-12T06:40:00"
    assert (los_angeles.occurred_at, los_angeles.time_basis) == (None, TimeBasis.UNKNOWN)


def test_statuses_substatuses_and_modules(events: list[TrackingEvent]) -> None:
    assert [(e.status, e.substatus, e.module) for e in events] == [
        (Status.INFO_RECEIVED, None, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.ARRIVED_HUB, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.DEPARTED_HUB, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.EXPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.DEPARTED_ORIGIN_COUNTRY, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.ARRIVED_DESTINATION_COUNTRY, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.HANDED_OVER, Module.DESTINATION),
        (Status.OUT_FOR_DELIVERY, None, Module.DESTINATION),
        (Status.DELIVERED, None, Module.DESTINATION),
    ]


def test_hand_off_to_the_last_mile_carrier(events: list[TrackingEvent]) -> None:
    handed = [e for e in events if e.handoff is not None]
    assert len(handed) == 1
    handoff = handed[0].handoff
    assert handoff is not None
    assert (handoff.carrier, handoff.tracking_number) == ("usps", "9400111899562537866361")
    assert handoff.evidence == "text"


def test_node_codes_and_places(events: list[TrackingEvent]) -> None:
    assert [e.carrier_code for e in events[:4]] == ["FPX_L_RPIF", "FPX_C_AAF", "FPX_C_ADF", None]
    location = events[-1].location
    assert location is not None
    assert (location.city, location.country, location.text) == (
        "Baltimore",
        "US",
        "Baltimore, MD, US",
    )


def test_no_personal_data_and_deterministic_ids(events: list[TrackingEvent]) -> None:
    assert "brenner" not in dumped(ParseResult(events=events))
    assert events[-1].description == "Delivered, signed by: [redacted]"
    assert [e.event_id for e in parse(fixture("fourpx", JOURNEY)).events] == [
        e.event_id for e in events
    ]


def test_twelve_hour_and_slashed_times() -> None:
    doc = fixture_json("fourpx", JOURNEY)
    doc["data"]["trackingList"] = [
        {"occurDatetime": "2025/03/15 02:22:05 PM", "occurLocation": "Shenzhen",
         "trackingContent": "Delivered"},
        {"occurDatetime": "2025/3/15 9:05:00 am", "occurLocation": "Shenzhen",
         "trackingContent": "Out for delivery"},
    ]  # fmt: skip
    first, second = parse(doc).events
    assert first.occurred_at_local == "2025-03-15T09:05:00"
    assert second.occurred_at_local == "2025-03-15T14:22:05"


def test_order_not_found_inside_200() -> None:
    result = parse(fixture("fourpx", "order_not_found.json"), requested=NUMBER)
    (error,) = result.errors
    assert (error.tracking_number, error.code) == (NUMBER, "not_found")
    assert "TR0001" in error.message


def test_sign_error_inside_200() -> None:
    (error,) = parse(fixture("fourpx", "sign_error.json"), requested=NUMBER).errors
    assert error.code == "carrier_error" and "sign" in error.message


def test_empty_tracking_list_is_not_found_never_an_empty_success() -> None:
    doc = fixture_json("fourpx", JOURNEY)
    doc["data"]["trackingList"] = []
    result = parse(doc, requested=NUMBER)
    assert result.events == []
    assert [(e.tracking_number, e.code) for e in result.errors] == [(NUMBER, "not_found")]


@pytest.mark.parametrize("body", [b"{}", b'{"result": "1"}', b'{"result": "1", "data": []}'])
def test_unexpected_shapes(body: bytes) -> None:
    result = parse(body, requested=NUMBER)
    assert result.events == [] and {e.code for e in result.errors} == {"malformed"}


DOCS = [fixture_json("fourpx", JOURNEY), fixture_json("fourpx", "order_not_found.json")]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads(DOCS), status=st.sampled_from([200, 200, 200, 500]))
def test_never_raises_on_mutated_payloads(payload: bytes, status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER, http_status=status))


@settings(max_examples=150, deadline=None)
@given(payload=corrupted_bytes([fixture("fourpx", JOURNEY)]))
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER))


def test_never_raises_on_hostile_payloads() -> None:
    check_hostile(lambda p: ADAPTER.parse(p, requested=NUMBER))

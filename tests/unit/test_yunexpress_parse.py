"""YunExpressAdapter.parse against real-format OMS API payloads: contracts §6.3."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.base import ParseResult
from services.carriers.adapters.yunexpress import YunExpressAdapter
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

ADAPTER = YunExpressAdapter()
WAYBILL, LAST_MILE = "YT2507012345678901", "FJ527319468GB"
JOURNEY = "cn_gb_last_mile.json"


def parse(body: bytes | dict[str, Any], **kwargs: Any) -> ParseResult:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ADAPTER.parse(payload, **kwargs)


@pytest.fixture(scope="module")
def events() -> list[TrackingEvent]:
    result = parse(fixture("yunexpress", JOURNEY), requested=WAYBILL)
    assert result.errors == []
    return result.events


def test_events_are_under_the_waybill(events: list[TrackingEvent]) -> None:
    assert {e.tracking_number for e in events} == {WAYBILL}
    assert [e.sequence for e in events] == list(range(11))


def test_last_mile_number_is_a_hand_off_on_the_handover_scan(events: list[TrackingEvent]) -> None:
    handed = [e for e in events if e.handoff is not None]
    assert len(handed) == 1
    event, handoff = handed[0], handed[0].handoff
    assert handoff is not None
    assert event.description == "Shipment handed over to Royal Mail for final delivery"
    assert (handoff.carrier, handoff.tracking_number) == ("royal-mail", LAST_MILE)
    assert handoff.evidence == "TrackingNumber"


def test_hand_off_without_a_handover_scan_goes_to_the_first_last_mile_scan() -> None:
    doc = fixture_json("yunexpress", JOURNEY)
    details = doc["Item"]["OrderTrackingDetails"]
    details[8]["ProcessContent"] = "Arrived at local depot"
    handed = [e for e in parse(doc).events if e.handoff]
    assert [e.status for e in handed] == [Status.OUT_FOR_DELIVERY]


def test_no_hand_off_when_the_numbers_match() -> None:
    doc = fixture_json("yunexpress", JOURNEY)
    doc["Item"]["TrackingNumber"] = WAYBILL
    assert all(e.handoff is None for e in parse(doc).events)


def test_times(events: list[TrackingEvent]) -> None:
    first = events[0]
    assert (first.occurred_at_local, first.utc_offset) == ("2025-03-10T11:20:00", None)
    assert first.occurred_at == datetime(2025, 3, 10, 3, 20, tzinfo=UTC)
    assert first.time_basis is TimeBasis.LOCATION_TIMEZONE
    handover = events[8]  # .NET's 7-digit fraction
    assert handover.occurred_at_local == "2025-03-15T08:00:00.587123"
    assert handover.occurred_at == datetime(2025, 3, 15, 8, 0, 0, 587123, tzinfo=UTC)


def test_per_event_time_zone_when_present() -> None:
    doc = fixture_json("yunexpress", JOURNEY)
    doc["Item"]["OrderTrackingDetails"][0]["TimeZone"] = "UTC+08:00"
    first = parse(doc).events[0]
    assert (first.utc_offset, first.time_basis) == ("+08:00", TimeBasis.CARRIER_OFFSET)


def test_statuses_substatuses_and_modules(events: list[TrackingEvent]) -> None:
    assert [(e.status, e.substatus, e.module) for e in events] == [
        (Status.INFO_RECEIVED, None, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.PICKED_UP, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.DEPARTED_HUB, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.EXPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.DEPARTED_ORIGIN_COUNTRY, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.ARRIVED_DESTINATION_COUNTRY, Module.INTERNATIONAL),
        (Status.EXCEPTION, Substatus.IMPORT_CUSTOMS_HELD, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.HANDED_OVER, Module.DESTINATION),
        (Status.OUT_FOR_DELIVERY, None, Module.DESTINATION),
        (Status.DELIVERED, None, Module.DESTINATION),
    ]


def test_no_personal_data(events: list[TrackingEvent]) -> None:
    assert "harriet" not in dumped(ParseResult(events=events))


def test_newest_first_payload_is_turned_round() -> None:
    doc = fixture_json("yunexpress", JOURNEY)
    doc["Item"]["OrderTrackingDetails"].reverse()
    assert [e.description for e in parse(doc).events] == [
        e.description for e in parse(fixture("yunexpress", JOURNEY)).events
    ]


@pytest.mark.parametrize(
    ("name", "kind", "code"),
    [("no_data.json", "not_found", "1006"), ("rate_limited.json", "carrier_error", "10000")],
)
def test_envelope_errors_inside_200(name: str, kind: str, code: str) -> None:
    (error,) = parse(fixture("yunexpress", name), requested=WAYBILL).errors
    assert (error.tracking_number, error.code) == (WAYBILL, kind)
    assert f"Code {code}" in error.message


def test_envelope_code_keeps_leading_zeros() -> None:
    doc = fixture_json("yunexpress", JOURNEY)
    doc["Code"] = 0  # "0000" is success; a bare 0 is not the same code
    (error,) = parse(doc, requested=WAYBILL).errors
    assert error.code == "carrier_error" and "Code 0:" in error.message


def test_item_without_details_is_not_found() -> None:
    doc = fixture_json("yunexpress", JOURNEY)
    doc["Item"]["OrderTrackingDetails"] = []
    doc["Item"]["TrackingStatus"] = 0
    (error,) = parse(doc).errors
    assert (error.tracking_number, error.code) == (WAYBILL, "not_found")
    assert "not found" in error.message


DOCS = [fixture_json("yunexpress", JOURNEY), fixture_json("yunexpress", "no_data.json")]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads(DOCS), status=st.sampled_from([200, 200, 200, 500]))
def test_never_raises_on_mutated_payloads(payload: bytes, status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=WAYBILL, http_status=status))


@settings(max_examples=150, deadline=None)
@given(payload=corrupted_bytes([fixture("yunexpress", JOURNEY)]))
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=WAYBILL))


def test_never_raises_on_hostile_payloads() -> None:
    check_hostile(lambda p: ADAPTER.parse(p, requested=WAYBILL))

"""UpsAdapter.parse against real-format Track API payloads: every quirk of contracts §2."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.base import ParseResult
from services.carriers.adapters.ups import UpsAdapter
from shared.schema import TrackingEvent
from shared.taxonomy import Module, Source, Status, Substatus, TimeBasis
from tests.unit.parse_checks import (
    assert_well_formed,
    check_hostile,
    corrupted_bytes,
    dumped,
    fixture,
    fixture_json,
    mutated_payloads,
)

ADAPTER = UpsAdapter()
NUMBER = "1ZA9F3190412345670"
JOURNEY = "de_us_customs_failed_attempt_pickup.json"


def parse(body: bytes | dict[str, Any], **kwargs: Any) -> ParseResult:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ADAPTER.parse(payload, **kwargs)


@pytest.fixture(scope="module")
def events() -> list[TrackingEvent]:
    result = parse(fixture("ups", JOURNEY), requested=NUMBER, raw_ref="raw:7")
    assert result.errors == []
    return result.events


def by_code(events: list[TrackingEvent], code: str) -> TrackingEvent:
    (event,) = [e for e in events if e.carrier_code == code]
    return event


def test_unordered_activities_come_out_in_journey_order(events: list[TrackingEvent]) -> None:
    assert [e.sequence for e in events] == list(range(12))
    assert [e.carrier_code for e in events] == [
        "MP/003", "OR/038", "DP/005", "AR/005", "HC/012", "SR/005",
        "DP/005", "AR/005", "OT/021", "48/022", "ZP/040", "FS/011",
    ]  # fmt: skip
    locals_ = [e.occurred_at_local for e in events]
    assert locals_[0] == "2025-03-10T10:15:00" and locals_[-1] == "2025-03-14T11:30:00"


def test_the_repeated_activity_collapses(events: list[TrackingEvent]) -> None:
    raw = fixture_json("ups", JOURNEY)["trackResponse"]["shipment"][0]["package"][0]["activity"]
    assert len(raw) == 13 and len(events) == 12
    assert len({e.event_id for e in events}) == 12


def test_statuses_substatuses_and_modules(events: list[TrackingEvent]) -> None:
    assert [(e.status, e.substatus, e.module) for e in events] == [
        (Status.INFO_RECEIVED, None, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.PICKED_UP, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.DEPARTED_HUB, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.ARRIVED_DESTINATION_COUNTRY, Module.INTERNATIONAL),
        (Status.EXCEPTION, Substatus.IMPORT_CUSTOMS_HELD, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.DEPARTED_HUB, Module.DESTINATION),
        (Status.IN_TRANSIT, Substatus.ARRIVED_HUB, Module.DESTINATION),
        (Status.OUT_FOR_DELIVERY, None, Module.DESTINATION),
        (Status.FAILED_ATTEMPT, Substatus.RECIPIENT_UNAVAILABLE, Module.DESTINATION),
        (Status.AVAILABLE_FOR_PICKUP, None, Module.DESTINATION),
        (Status.DELIVERED, None, Module.DESTINATION),
    ]


def test_gmt_fields_give_the_instant_and_the_stated_offset(events: list[TrackingEvent]) -> None:
    pickup = by_code(events, "OR/038")
    assert pickup.occurred_at_local == "2025-03-10T18:30:00"  # Neuss wall time, as UPS wrote it
    assert pickup.utc_offset == "+01:00"
    assert pickup.occurred_at == datetime(2025, 3, 10, 17, 30, tzinfo=UTC)
    assert pickup.time_basis is TimeBasis.CARRIER_UTC


def test_gmt_time_that_lost_its_leading_zero(events: list[TrackingEvent]) -> None:
    arrival = events[3]  # gmtTime "74700"
    assert arrival.occurred_at == datetime(2025, 3, 11, 7, 47, tzinfo=UTC)
    assert arrival.occurred_at_local == "2025-03-11T03:47:00"
    departure = events[6]  # gmtTime "23000" on the next UTC day
    assert departure.occurred_at == datetime(2025, 3, 13, 2, 30, tzinfo=UTC)


def test_local_time_without_gmt_fields(events: list[TrackingEvent]) -> None:
    label = events[0]  # Germany has one zone: the instant is derived
    assert (label.utc_offset, label.time_basis) == (None, TimeBasis.LOCATION_TIMEZONE)
    assert label.occurred_at == datetime(2025, 3, 10, 9, 15, tzinfo=UTC)
    atlanta = events[7]  # the US has several zones, but Georgia keeps one (EDT, UTC-4)
    assert atlanta.occurred_at_local == "2025-03-13T04:15:00"
    assert atlanta.occurred_at == datetime(2025, 3, 13, 8, 15, tzinfo=UTC)
    assert atlanta.time_basis is TimeBasis.LOCATION_TIMEZONE


def test_local_time_in_a_split_state_stays_unknown() -> None:
    doc = fixture_json("ups", JOURNEY)
    activity = doc["trackResponse"]["shipment"][0]["package"][0]["activity"]
    atlanta = next(a for a in activity if a["time"] == "041500")
    atlanta["location"]["address"]["stateProvince"] = "TX"  # Texas has two zones
    event = next(e for e in parse(doc).events if e.occurred_at_local == "2025-03-13T04:15:00")
    assert (event.occurred_at, event.time_basis) == (None, TimeBasis.UNKNOWN)  # never UTC by guess


def test_gmt_offset_alone_gives_the_instant() -> None:
    doc = fixture_json("ups", JOURNEY)
    activity = doc["trackResponse"]["shipment"][0]["package"][0]["activity"]
    atlanta = next(a for a in activity if a["time"] == "041500")
    atlanta["gmtOffset"] = "-0400"  # no colon
    event = next(e for e in parse(doc).events if e.occurred_at_local == "2025-03-13T04:15:00")
    assert (event.utc_offset, event.time_basis) == ("-04:00", TimeBasis.CARRIER_OFFSET)
    assert event.occurred_at == datetime(2025, 3, 13, 8, 15, tzinfo=UTC)


def test_status_codes_keep_leading_zeros(events: list[TrackingEvent]) -> None:
    assert events[0].carrier_code == "MP/003"
    assert by_code(events, "48/022").status is Status.FAILED_ATTEMPT


def test_location_without_street_address(events: list[TrackingEvent]) -> None:
    location = events[-1].location
    assert location is not None
    assert (location.city, location.region, location.country) == ("ATLANTA", "GA", "US")
    assert location.text == "ATLANTA, GA, 30303, US"


def test_no_personal_data(events: list[TrackingEvent]) -> None:
    text = dumped(ParseResult(events=events))
    for secret in ("holloway", "margaret", "evergreen", "r0lgod", "rheinland", "industriestrasse"):
        assert secret not in text, secret
    assert "[redacted]" in by_code(events, "48/022").description


def test_event_ids_are_deterministic(events: list[TrackingEvent]) -> None:
    again = parse(fixture("ups", JOURNEY)).events
    assert [e.event_id for e in again] == [e.event_id for e in events]
    assert {(e.raw_ref, e.source, e.tracking_number) for e in events} == {
        ("raw:7", Source.POLL, NUMBER)
    }


def test_source_passes_through() -> None:
    result = parse(fixture("ups", JOURNEY), source=Source.CARRIER_WEBHOOK)
    assert {e.source for e in result.events} == {Source.CARRIER_WEBHOOK}


@pytest.mark.parametrize(
    ("kind", "code", "status_code", "text", "expected"),
    [
        ("D", "FS", "011", "DELIVERED", (Status.DELIVERED, None)),
        ("I", "OT", "021", "Out For Delivery Today", (Status.OUT_FOR_DELIVERY, None)),
        ("X", "48", "022", "The receiver was not available", (Status.FAILED_ATTEMPT, Substatus.RECIPIENT_UNAVAILABLE)),
        ("I", "ZP", "040", "Ready for pickup", (Status.AVAILABLE_FOR_PICKUP, None)),
        ("X", "RS", "034", "Returned to shipper", (Status.RETURNED, None)),
        ("M", "DP", None, "Shipment ready for UPS", (Status.INFO_RECEIVED, None)),  # manifest DP
        ("MV", "VP", None, "Billing information voided", (Status.EXCEPTION, None)),
        ("I", "DJ", "005", "Weather delay", (Status.IN_TRANSIT, Substatus.DELAYED)),
        ("I", "QQ", None, "Clearance in progress", (Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_PRESENTED)),
        ("X", "QQ", None, "Damage reported", (Status.EXCEPTION, Substatus.DAMAGED)),
        ("I", "XD", "038", "Drop-Off", (Status.IN_TRANSIT, Substatus.PICKED_UP)),
        ("X", "QQ", None, "The delivery date will be updated; it will be delivered later", (Status.EXCEPTION, None)),
    ],
)  # fmt: skip
def test_code_mapping(
    kind: str,
    code: str,
    status_code: str | None,
    text: str,
    expected: tuple[Status, Substatus | None],
) -> None:
    status: dict[str, Any] = {"type": kind, "code": code, "description": text}
    if status_code:
        status["statusCode"] = status_code
    doc = {"trackResponse": {"shipment": [{"inquiryNumber": NUMBER, "package": [{
        "trackingNumber": NUMBER,
        "activity": [{"date": "20250313", "time": "101500", "status": status,
                      "location": {"address": {"city": "ATLANTA", "countryCode": "US"}}}],
    }]}]}}  # fmt: skip
    (event,) = parse(doc).events
    assert (event.status, event.substatus) == expected


def test_export_side_customs_in_origin_country() -> None:
    doc = fixture_json("ups", JOURNEY)
    activity = doc["trackResponse"]["shipment"][0]["package"][0]["activity"]
    koeln = next(a for a in activity if a["location"]["address"]["city"] == "KOELN")
    koeln["status"] = {
        "type": "I",
        "code": "QQ",
        "description": "Clearance in progress",
        "statusCode": "012",
    }
    event = next(e for e in parse(doc).events if e.location and e.location.city == "KOELN")
    assert (event.substatus, event.module) == (
        Substatus.EXPORT_CUSTOMS_PRESENTED,
        Module.INTERNATIONAL,
    )


# --- errors inside and outside HTTP 200 -----------------------------------------------------


def test_not_found_is_a_warning_inside_200() -> None:
    result = parse(fixture("ups", "not_found_warning.json"), requested="1Z999AA10123456784")
    assert result.events == []
    (error,) = result.errors
    assert (error.tracking_number, error.code) == ("1Z999AA10123456784", "not_found")
    assert "TW0001" in error.message


def test_error_document_is_a_carrier_error() -> None:
    payload = fixture("ups", "invalid_credentials_401.json")
    (error,) = parse(payload, requested=NUMBER, http_status=401).errors
    assert (error.tracking_number, error.code) == (NUMBER, "carrier_error")
    assert "250002" in error.message and "HTTP 401" in error.message


def test_invalid_inquiry_number_is_not_found() -> None:
    body = {"response": {"errors": [{"code": "TV1002", "message": "Invalid inquiry number"}]}}
    (error,) = parse(body, requested="1Z", http_status=400).errors
    assert error.code == "not_found"


def test_a_bad_activity_is_skipped_and_the_rest_come_through() -> None:
    doc = fixture_json("ups", JOURNEY)
    activity = doc["trackResponse"]["shipment"][0]["package"][0]["activity"]
    activity[0]["date"] = "2025-03-14"
    activity[1]["time"] = "9:30"
    activity[2] = "nonsense"  # one of the two copies of the out-for-delivery scan
    result = parse(doc)
    assert len(result.errors) == 3 and {e.code for e in result.errors} == {"malformed"}
    assert len(result.events) == 10
    assert [e.sequence for e in result.events] == list(range(10))
    assert "OT/021" in {e.carrier_code for e in result.events}


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"trackResponse": {}}', b'{"trackResponse": {"shipment": [7]}}',
     b'{"trackResponse": {"shipment": [{"package": [{"activity": []}]}]}}'],
)  # fmt: skip
def test_unexpected_shapes(body: bytes) -> None:
    result = parse(body, requested="1Z999AA10123456784")
    assert result.events == [] and result.errors
    assert {e.code for e in result.errors} <= {"malformed", "not_found"}


def test_garbage_is_malformed_and_html_error_is_carrier_error() -> None:
    (error,) = parse(b"<html>oops", requested=NUMBER).errors
    assert error.code == "malformed"
    (error,) = parse(b"<html>Bad Gateway", requested=NUMBER, http_status=502).errors
    assert error.code == "carrier_error"


# --- never raises ---------------------------------------------------------------------------

DOCS = [fixture_json("ups", JOURNEY), fixture_json("ups", "not_found_warning.json")]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads(DOCS), status=st.sampled_from([200, 200, 200, 400, 401, 503]))
def test_never_raises_on_mutated_payloads(payload: bytes, status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER, http_status=status))


@settings(max_examples=150, deadline=None)
@given(payload=corrupted_bytes([fixture("ups", JOURNEY)]))
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER))


def test_never_raises_on_hostile_payloads() -> None:
    check_hostile(lambda p: ADAPTER.parse(p, requested=NUMBER))
    deep = copy.deepcopy(fixture_json("ups", JOURNEY))
    deep["trackResponse"]["shipment"][0]["package"][0]["activity"][0]["gmtDate"] = "99999999"
    assert_well_formed(parse(deep))

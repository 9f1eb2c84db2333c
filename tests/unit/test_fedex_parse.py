"""FedexAdapter.parse against real-format Track API payloads: every quirk of contracts §3."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.base import ParseResult
from services.carriers.adapters.fedex import FedexAdapter
from shared.schema import TrackingEvent, make_event_id
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

ADAPTER = FedexAdapter()
NUMBER = "794612345678"
REUSED = "reused_number_customs_failed_attempt_pickup.json"
CURRENT_ID, OLDER_ID = "12025~794612345678~FX", "2460426000~794612345678~FX"


def parse(body: bytes | dict[str, Any], **kwargs: Any) -> ParseResult:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ADAPTER.parse(payload, **kwargs)


@pytest.fixture(scope="module")
def result() -> ParseResult:
    parsed = parse(fixture("fedex", REUSED), requested=NUMBER)
    assert parsed.errors == []
    return parsed


@pytest.fixture(scope="module")
def current(result: ParseResult) -> list[TrackingEvent]:
    return result.events[:14]


@pytest.fixture(scope="module")
def older(result: ParseResult) -> list[TrackingEvent]:
    return result.events[14:]


def one_scan(scan: dict[str, Any], **info: str) -> dict[str, Any]:
    return {"output": {"completeTrackResults": [{"trackingNumber": NUMBER, "trackResults": [{
        "trackingNumberInfo": {"trackingNumber": NUMBER, **info},
        "shipperInformation": {"address": {"countryCode": "CN"}},
        "recipientInformation": {"address": {"countryCode": "US"}},
        "scanEvents": [scan]}]}]}}  # fmt: skip


def scan(event_type: str, description: str, exception: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "date": "2025-03-13T13:47:00-07:00",
        "eventType": event_type,
        "eventDescription": description,
        "exceptionCode": exception,
        "scanLocation": {"city": "IRVINE", "stateOrProvinceCode": "CA", "countryCode": "US"},
        **extra,
    }


# --- two shipments behind one number --------------------------------------------------------


def test_both_shipments_are_emitted_and_kept_apart(
    result: ParseResult, current: list[TrackingEvent], older: list[TrackingEvent]
) -> None:
    assert len(current) == 14 and len(older) == 3
    assert {e.tracking_number for e in result.events} == {NUMBER}
    assert [e.sequence for e in current] == list(range(14))  # each its own journey
    assert [e.sequence for e in older] == [0, 1, 2]
    assert current[-1].occurred_at_local == "2025-03-14T11:26:00"
    assert older[-1].occurred_at_local == "2023-06-05T10:15:00"


def test_unique_id_is_folded_into_the_event_id(
    current: list[TrackingEvent], older: list[TrackingEvent]
) -> None:
    delivered = current[-1]
    expected = make_event_id(
        "fedex",
        NUMBER,
        f"DL~{CURRENT_ID}",
        "2025-03-14T11:26:00-07:00",
        delivered.location.text if delivered.location else None,
    )
    assert delivered.event_id == expected
    # the same scan under the other shipment's unique id would not collide
    doc = fixture_json("fedex", REUSED)
    results = doc["output"]["completeTrackResults"][0]["trackResults"]
    results[1]["scanEvents"] = results[0]["scanEvents"]
    twin = parse(doc).events
    assert len(twin) == 28 and len({e.event_id for e in twin}) == 28


def test_event_ids_are_deterministic(result: ParseResult) -> None:
    again = parse(fixture("fedex", REUSED))
    assert [e.event_id for e in again.events] == [e.event_id for e in result.events]


def test_repeated_scan_collapses(current: list[TrackingEvent]) -> None:
    raw = fixture_json("fedex", REUSED)["output"]["completeTrackResults"][0]["trackResults"][0]
    assert len(raw["scanEvents"]) == 15
    assert [e.description for e in current].count("At local FedEx facility") == 1


# --- time -----------------------------------------------------------------------------------


def test_offsets_give_instants(current: list[TrackingEvent]) -> None:
    pickup = current[1]
    assert (pickup.occurred_at_local, pickup.utc_offset) == ("2025-03-10T16:40:00", "+08:00")
    assert pickup.occurred_at == datetime(2025, 3, 10, 8, 40, tzinfo=UTC)
    assert pickup.time_basis is TimeBasis.CARRIER_OFFSET


def test_label_event_offset_is_fedex_system_time(
    current: list[TrackingEvent], older: list[TrackingEvent]
) -> None:
    for label in (current[0], older[0]):
        assert label.carrier_code == "OC"
        assert label.utc_offset == "-05:00"  # kept as written ...
        assert label.occurred_at is None  # ... but not trusted
        assert label.time_basis is TimeBasis.UNKNOWN
    assert current[0].occurred_at_local == "2025-03-09T21:10:00"


def test_date_only_pickup_without_offset(older: list[TrackingEvent]) -> None:
    pickup = older[1]
    assert (pickup.occurred_at_local, pickup.utc_offset) == ("2023-06-02T00:00:00", None)
    # California keeps one zone throughout, so the wall time has an instant (PDT, UTC-7).
    assert pickup.occurred_at == datetime(2023, 6, 2, 7, 0, tzinfo=UTC)
    assert pickup.time_basis is TimeBasis.LOCATION_TIMEZONE


@pytest.mark.parametrize(
    ("date", "offset", "instant"),
    [
        ("2025-03-13T13:47:00.1234567-0700", "-07:00", datetime(2025, 3, 13, 20, 47, 0, 123456, tzinfo=UTC)),
        ("2025-03-13T13:47:00Z", "+00:00", datetime(2025, 3, 13, 13, 47, tzinfo=UTC)),
        # No offset: Irvine, CA is in a single-zone state, so the instant comes from the place.
        ("2025-03-13 01:47 PM", None, datetime(2025, 3, 13, 20, 47, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_timestamp_spellings(date: str, offset: str | None, instant: datetime | None) -> None:
    (event,) = parse(one_scan(scan("AR", "Arrived", date=date))).events
    assert event.utc_offset == offset and event.occurred_at == instant
    assert (event.occurred_at_local or "").startswith("2025-03-13T13:47:00")


def test_offset_impossible_for_the_place_is_not_trusted() -> None:
    (event,) = parse(one_scan(scan("AR", "Arrived", date="2025-03-13T13:47:00+08:00"))).events
    assert event.utc_offset == "+08:00"  # kept as written, but the instant is California's
    assert event.occurred_at == datetime(2025, 3, 13, 20, 47, tzinfo=UTC)
    assert event.time_basis is TimeBasis.LOCATION_TIMEZONE


def test_offset_impossible_in_a_split_state_leaves_the_instant_unknown() -> None:
    doc = one_scan(scan("AR", "Arrived", date="2025-03-13T13:47:00+08:00"))
    _scan_location(doc).update(city="EL PASO", stateOrProvinceCode="TX")  # Texas has two zones
    (event,) = parse(doc).events
    assert event.utc_offset == "+08:00"
    assert (event.occurred_at, event.time_basis) == (None, TimeBasis.UNKNOWN)


def _scan_location(doc: dict) -> dict:
    result = doc["output"]["completeTrackResults"][0]["trackResults"][0]
    return result["scanEvents"][0]["scanLocation"]


# --- mapping --------------------------------------------------------------------------------


def test_statuses_substatuses_and_modules(current: list[TrackingEvent]) -> None:
    assert [(e.carrier_code, e.status, e.substatus, e.module) for e in current] == [
        ("OC", Status.INFO_RECEIVED, None, Module.ORIGIN),
        ("PU", Status.IN_TRANSIT, Substatus.PICKED_UP, Module.ORIGIN),
        ("AR", Status.IN_TRANSIT, Substatus.ARRIVED_HUB, Module.ORIGIN),
        ("CC", Status.IN_TRANSIT, Substatus.EXPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        ("DP", Status.IN_TRANSIT, Substatus.DEPARTED_HUB, Module.INTERNATIONAL),
        ("AR", Status.IN_TRANSIT, Substatus.ARRIVED_DESTINATION_COUNTRY, Module.INTERNATIONAL),
        ("CD", Status.EXCEPTION, Substatus.IMPORT_CUSTOMS_HELD, Module.INTERNATIONAL),
        ("CC", Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        ("DP", Status.IN_TRANSIT, Substatus.DEPARTED_HUB, Module.DESTINATION),
        ("AR", Status.IN_TRANSIT, Substatus.ARRIVED_HUB, Module.DESTINATION),
        ("OD", Status.OUT_FOR_DELIVERY, None, Module.DESTINATION),
        ("DE/08", Status.FAILED_ATTEMPT, Substatus.RECIPIENT_UNAVAILABLE, Module.DESTINATION),
        ("HL", Status.AVAILABLE_FOR_PICKUP, None, Module.DESTINATION),
        ("DL", Status.DELIVERED, None, Module.DESTINATION),
    ]


@pytest.mark.parametrize(
    ("event_type", "exception", "description", "expected"),
    [
        ("DE", "08", "Delivery exception", (Status.FAILED_ATTEMPT, Substatus.RECIPIENT_UNAVAILABLE)),
        ("DE", "", "Delivery exception - Incorrect address", (Status.FAILED_ATTEMPT, Substatus.ADDRESS_ISSUE)),
        ("SE", "A52", "Shipment exception", (Status.IN_TRANSIT, Substatus.DELAYED)),
        ("SE", "", "Shipment exception - damaged", (Status.EXCEPTION, Substatus.DAMAGED)),
        ("CP", "", "Clearance in progress", (Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_PRESENTED)),
        ("CD", "A25", "Clearance delay", (Status.EXCEPTION, Substatus.IMPORT_CUSTOMS_HELD)),
        ("RS", "", "Return to shipper", (Status.EXCEPTION, Substatus.RETURNING)),
        ("HP", "", "Ready for recipient pickup", (Status.AVAILABLE_FOR_PICKUP, None)),
        ("IT", "", "In transit", (Status.IN_TRANSIT, None)),
        ("ZZ", "", "Something new", (Status.IN_TRANSIT, None)),
        ("EA", "", "Export approved", (Status.IN_TRANSIT, Substatus.EXPORT_CUSTOMS_RELEASED)),
        ("AX", "", "At USPS facility", (Status.IN_TRANSIT, Substatus.HANDED_OVER)),
    ],
)  # fmt: skip
def test_code_mapping(
    event_type: str, exception: str, description: str, expected: tuple[Status, Substatus | None]
) -> None:
    (event,) = parse(one_scan(scan(event_type, description, exception))).events
    assert (event.status, event.substatus) == expected


def test_unknown_type_falls_back_to_derived_status_code() -> None:
    raw = scan("ZZ", "Something new", derivedStatusCode="DL")
    (event,) = parse(one_scan(raw)).events
    assert (event.carrier_code, event.status) == ("ZZ", Status.DELIVERED)


def test_exception_code_keeps_its_leading_zero(current: list[TrackingEvent]) -> None:
    assert current[11].carrier_code == "DE/08"
    assert "Customer not available" in current[11].description


def test_no_personal_data(result: ParseResult) -> None:
    text = dumped(result)
    for secret in ("okafor", "daniel", "priya", "raman", "wei zhang", "brightware", "example way"):
        assert secret not in text, secret
    assert "[redacted]" in result.events[13].description


# --- errors ---------------------------------------------------------------------------------


def test_per_number_error_inside_200_and_the_other_number_parses() -> None:
    parsed = parse(fixture("fedex", "batch_with_not_found.json"), requested="122816215025")
    assert [e.status for e in parsed.events] == [Status.OUT_FOR_DELIVERY, Status.DELIVERED]
    assert {e.tracking_number for e in parsed.events} == {"122816215025"}
    (error,) = parsed.errors
    assert (error.tracking_number, error.code) == ("123456789012", "not_found")
    assert "NOTFOUND" in error.message


def test_other_per_number_errors_are_carrier_errors() -> None:
    doc = fixture_json("fedex", "batch_with_not_found.json")
    doc["output"]["completeTrackResults"][1]["trackResults"][0]["error"]["code"] = (
        "TRACKING.TRACKINGNUMBER.INVALID"
    )
    (error,) = parse(doc).errors
    assert error.code == "carrier_error"


def test_whole_request_error() -> None:
    parsed = parse(fixture("fedex", "unauthorized_401.json"), requested=NUMBER, http_status=401)
    (error,) = parsed.errors
    assert (error.tracking_number, error.code) == (NUMBER, "carrier_error")
    assert "NOT.AUTHORIZED.ERROR" in error.message


@pytest.mark.parametrize(
    "body",
    [b"{}", b'{"output": {"completeTrackResults": {}}}', b'{"output": {"completeTrackResults": []}}',
     b'{"output": {"completeTrackResults": [{"trackingNumber": "1", "trackResults": []}]}}'],
)  # fmt: skip
def test_unexpected_shapes(body: bytes) -> None:
    parsed = parse(body, requested=NUMBER)
    assert parsed.events == [] and parsed.errors
    assert {e.code for e in parsed.errors} <= {"malformed", "not_found"}


def test_a_bad_scan_is_skipped() -> None:
    doc = fixture_json("fedex", REUSED)
    scans = doc["output"]["completeTrackResults"][0]["trackResults"][0]["scanEvents"]
    scans[0]["date"] = "yesterday"
    scans[1] = None
    parsed = parse(doc)
    assert len(parsed.errors) == 2 and len(parsed.events) == 15


# --- never raises ---------------------------------------------------------------------------

DOCS = [fixture_json("fedex", REUSED), fixture_json("fedex", "batch_with_not_found.json")]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads(DOCS), status=st.sampled_from([200, 200, 200, 400, 401, 503]))
def test_never_raises_on_mutated_payloads(payload: bytes, status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER, http_status=status))


@settings(max_examples=150, deadline=None)
@given(payload=corrupted_bytes([fixture("fedex", REUSED)]))
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER))


def test_never_raises_on_hostile_payloads() -> None:
    check_hostile(lambda p: ADAPTER.parse(p, requested=NUMBER))

"""UspsAdapter against real-format Tracking API v3 JSON and legacy TrackV2 XML (contracts §4)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.usps import EVENT_CODES, UspsAdapter, parse_us_datetime
from shared.errors import InvalidInput
from shared.taxonomy import Module, Status, Substatus, TimeBasis
from tests.unit.postal_support import (
    assert_well_formed,
    corrupted_bytes,
    dumped,
    load,
    load_json,
    mutated_json,
    spliced_xml,
)

ADAPTER = UspsAdapter()
PIC = "9400111899223857456123"
S, U, M = Status, Substatus, Module


def parse(body: bytes | dict[str, Any], **kwargs: Any) -> Any:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ADAPTER.parse(payload, **kwargs)


@pytest.fixture(scope="module")
def domestic() -> list[Any]:
    result = parse(load("usps", "v3_domestic.json"), requested="420113759400111899223857456123")
    assert result.errors == []
    return list(result.events)


@pytest.fixture(scope="module")
def inbound() -> list[Any]:
    result = parse(load("usps", "v3_inbound_cn.json"), requested="LX123456785CN")
    assert result.errors == []
    return list(result.events)


def one_event(**fields: Any) -> dict[str, Any]:
    event = {"eventType": "Arrived at Post Office", "eventTimestamp": "2024-11-22T04:31:00",
             "eventCity": "QUEENS", "eventState": "NY", "eventZIP": "11375", "eventCode": "07"}  # fmt: skip
    event.update(fields)
    return {"trackingNumber": PIC, "trackingEvents": [event]}


# --- v3 -----------------------------------------------------------------------------------------


def test_the_pic_is_returned_not_the_scanned_barcode(domestic: list[Any]) -> None:
    assert {e.tracking_number for e in domestic} == {PIC}


def test_local_wall_time_with_gmt_instant_and_stated_offset(domestic: list[Any]) -> None:
    delivered = domestic[-1]
    assert delivered.occurred_at_local == "2024-11-22T13:58:00"  # eventTimestamp, no offset
    assert delivered.occurred_at == datetime(2024, 11, 22, 18, 58, 40, tzinfo=UTC)  # GMTTimestamp
    assert delivered.utc_offset == "-05:00"
    assert delivered.time_basis is TimeBasis.CARRIER_UTC


def test_offset_without_leading_zero(domestic: list[Any]) -> None:
    (departed,) = [e for e in domestic if e.carrier_code == "T1"]
    assert departed.utc_offset == "-07:00"  # written "-7:00"


def test_offset_alone_gives_the_instant(domestic: list[Any]) -> None:
    (arrived,) = [e for e in domestic if e.carrier_code == "07"]
    assert arrived.occurred_at == datetime(2024, 11, 22, 9, 31, tzinfo=UTC)
    assert arrived.time_basis is TimeBasis.CARRIER_OFFSET


def test_no_zone_at_all_in_the_us_stays_unknown(domestic: list[Any]) -> None:
    (transit,) = [e for e in domestic if e.carrier_code == "TL"]
    assert transit.occurred_at is None and transit.time_basis is TimeBasis.UNKNOWN
    assert transit.occurred_at_local == "2024-11-19T00:00:00"


def test_codes_keep_leading_zeros_and_order_is_journey_order(domestic: list[Any]) -> None:
    assert [e.carrier_code for e in domestic] == ["GX", "03", "T1", "TL", "A1", "07", "OF", "01"]
    assert [e.sequence for e in domestic] == list(range(8))  # the A1 sent twice is kept once
    assert [e.status for e in domestic] == [
        S.INFO_RECEIVED, S.IN_TRANSIT, S.IN_TRANSIT, S.IN_TRANSIT, S.IN_TRANSIT, S.IN_TRANSIT,
        S.OUT_FOR_DELIVERY, S.DELIVERED,
    ]  # fmt: skip
    assert domestic[1].substatus is U.PICKED_UP


def test_facility_in_event_city_becomes_the_facility(domestic: list[Any]) -> None:
    (regional,) = [e for e in domestic if e.carrier_code == "A1"]
    assert regional.location is not None
    assert regional.location.facility == "QUEENS NY DISTRIBUTION CENTER"
    assert regional.location.city is None and regional.location.country == "US"


def test_inbound_international_uses_upu_wording_and_modules(inbound: list[Any]) -> None:
    assert [(e.substatus, e.module) for e in inbound] == [
        (U.PICKED_UP, M.ORIGIN),  # Origin Post is Preparing Shipment (CHINA)
        (U.DEPARTED_ORIGIN_COUNTRY, M.INTERNATIONAL),  # UPU wording
        (U.ARRIVED_DESTINATION_COUNTRY, M.INTERNATIONAL),  # first US scan: ISC
        (U.IMPORT_CUSTOMS_PRESENTED, M.INTERNATIONAL),
        (U.IMPORT_CUSTOMS_RELEASED, M.INTERNATIONAL),
        (None, M.DESTINATION),
        (None, M.DESTINATION),
    ]
    origin = inbound[0]
    assert origin.location is not None and origin.location.country == "CN"  # "CHINA"
    assert origin.time_basis is TimeBasis.LOCATION_TIMEZONE  # China has one zone


@pytest.mark.parametrize("code", sorted(EVENT_CODES))
def test_every_event_code_maps(code: str) -> None:
    result = parse(one_event(eventCode=code, eventType="text"))
    assert result.errors == []
    assert result.events[0].status is EVENT_CODES[code][0]
    assert result.events[0].carrier_code == code


def test_no_personal_data(domestic: list[Any]) -> None:
    text = dumped(parse(load("usps", "v3_domestic.json")))
    assert "receiverton" not in text and "jessica" not in text
    named = one_event(eventType="Delivered to JESSICA RECEIVERTON", eventCode="01",
                      name="JESSICA RECEIVERTON")  # fmt: skip
    assert "receiverton" not in dumped(parse(named))


def test_event_ids_are_deterministic(domestic: list[Any]) -> None:
    again = parse(load("usps", "v3_domestic.json")).events
    assert [e.event_id for e in again] == [e.event_id for e in domestic]


# --- v3 errors ----------------------------------------------------------------------------------


def test_404_error_object_is_not_found() -> None:
    result = parse(load("usps", "v3_not_found_404.json"), requested="9400100000000000000000",
                   http_status=404)  # fmt: skip
    (error,) = result.errors
    assert (error.tracking_number, error.code) == ("9400100000000000000000", "not_found")


def test_error_object_inside_200_is_still_an_error() -> None:
    body = {"apiVersion": "v3", "error": {"code": "400", "message": "Invalid tracking number"}}
    (error,) = parse(body, requested="X").errors
    assert error.code == "carrier_error" and "Invalid tracking number" in error.message


def test_oauth_error_is_a_carrier_error() -> None:
    (error,) = parse(load("usps", "oauth_invalid_client.json"), requested="X",
                     http_status=401).errors  # fmt: skip
    assert error.code == "carrier_error" and "invalid_client" in error.message


def test_answer_without_events_is_not_an_empty_success() -> None:
    result = parse({"trackingNumber": PIC, "trackingEvents": []})
    assert result.events == []
    (error,) = result.errors
    assert (error.tracking_number, error.code) == (PIC, "not_found")


@pytest.mark.parametrize(
    "body", [b"[1]", b'{"trackingNumber": "X"}', b'{"trackingEvents": []}', b"{nope"]
)
def test_unexpected_v3_shapes_are_malformed(body: bytes) -> None:
    (error,) = parse(body).errors
    assert error.code == "malformed"


# --- TrackV2 XML --------------------------------------------------------------------------------


def test_trackv2_summary_is_newest_and_12_hour_times() -> None:
    result = parse(load("usps", "trackv2.xml"), requested=PIC)
    assert result.errors == []
    events = result.events
    assert [e.carrier_code for e in events] == ["MA", "03", "07", "OF", "01"]
    assert [e.occurred_at_local for e in events] == [
        "2016-01-03T00:00:00",  # no EventTime
        "2016-01-04T12:30:00",  # 12:30 pm
        "2016-01-06T00:05:00",  # 12:05 am
        "2016-01-06T09:10:00",  # 9:10 am
        "2016-01-06T22:45:00",  # 10:45 pm (the TrackSummary)
    ]
    # Scans in New York and California take their state's zone; the one without a place has none.
    assert [e.time_basis for e in events] == [TimeBasis.UNKNOWN] + [TimeBasis.LOCATION_TIMEZONE] * 4
    assert events[0].occurred_at is None
    assert events[1].occurred_at == datetime(2016, 1, 4, 20, 30, tzinfo=UTC)  # 12:30 pm PST
    assert events[4].occurred_at == datetime(2016, 1, 7, 3, 45, tzinfo=UTC)  # 10:45 pm EST
    assert "receiverton" not in dumped(result)


def test_trackv2_error_inside_200_is_that_numbers_error() -> None:
    result = parse(load("usps", "trackv2_error.xml"), requested="9400100000000000000000")
    (error,) = result.errors
    assert (error.tracking_number, error.code) == ("9400100000000000000000", "not_found")


def test_trackv2_top_level_error() -> None:
    body = (
        b"<Error><Number>80040B1A</Number><Description>Authorization failure.</Description></Error>"
    )
    (error,) = parse(body, requested="X").errors
    assert error.code == "carrier_error"


def test_xml_bomb_is_refused_quickly() -> None:
    started = time.monotonic()
    (error,) = parse(load("usps", "bomb.xml"), requested="X").errors
    assert error.code == "malformed"
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("date", "clock", "expected"),
    [
        ("January 6, 2016", "10:45 pm", datetime(2016, 1, 6, 22, 45)),
        ("January 6, 2016", "9:10 am", datetime(2016, 1, 6, 9, 10)),
        ("January 6, 2016", "12:05 am", datetime(2016, 1, 6, 0, 5)),
        ("January 6, 2016", "12:30 PM", datetime(2016, 1, 6, 12, 30)),
        ("March 10, 2025", "", datetime(2025, 3, 10)),
    ],
)
def test_parse_us_datetime(date: str, clock: str, expected: datetime) -> None:
    assert parse_us_datetime(date, clock) == expected


@pytest.mark.parametrize("clock", ["13:10 pm", "0:10 am", "noon", "10.45 pm"])
def test_parse_us_datetime_refuses_bad_times(clock: str) -> None:
    with pytest.raises(InvalidInput):
        parse_us_datetime("January 6, 2016", clock)


# --- never raises -------------------------------------------------------------------------------

DOCS = [load_json("usps", n) for n in ("v3_domestic.json", "v3_inbound_cn.json")]
XML = [load("usps", n) for n in ("trackv2.xml", "trackv2_error.xml")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_json(DOCS), http_status=st.sampled_from([200, 200, 401, 404, 500]))
def test_never_raises_on_mutated_payloads(payload: bytes, http_status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=PIC, http_status=http_status))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=spliced_xml(XML))
def test_never_raises_on_spliced_xml(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=PIC))


@settings(max_examples=200, deadline=None)
@given(
    payload=st.one_of(
        st.binary(max_size=200), corrupted_bytes([*XML, load("usps", "v3_domestic.json")])
    )
)
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=PIC))

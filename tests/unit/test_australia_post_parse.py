"""AustraliaPostAdapter against real-format Shipping and Tracking API answers (contracts §0, §8)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.australia_post import AustraliaPostAdapter
from shared.taxonomy import Module, Status, Substatus, TimeBasis
from tests.unit.postal_support import (
    assert_well_formed,
    corrupted_bytes,
    dumped,
    load,
    load_json,
    mutated_json,
)

ADAPTER = AustraliaPostAdapter()
NUMBER = "LZ404040403CN"
S, U, M = Status, Substatus, Module


def parse(body: bytes | dict[str, Any], **kwargs: Any) -> Any:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ADAPTER.parse(payload, **kwargs)


def one(location: str | None, date: str, description: str = "Processed through facility") -> Any:
    event: dict[str, Any] = {"date": date, "description": description}
    if location is not None:
        event["location"] = location
    item = {"article_id": NUMBER, "events": [event]}
    result = parse({"tracking_results": [{"tracking_id": NUMBER, "trackable_items": [item]}]})
    assert result.errors == []
    return result.events[0]


@pytest.fixture(scope="module")
def result() -> Any:
    return parse(load("australia_post", "track_us_au.json"), requested=NUMBER)


@pytest.fixture(scope="module")
def article(result: Any) -> list[Any]:
    return [e for e in result.events if e.tracking_number == NUMBER]


def test_per_number_error_inside_200(result: Any) -> None:
    (error,) = result.errors
    assert (error.tracking_number, error.code) == ("NOTANUMBER", "not_found")
    assert "ESB-10001" in error.message


def test_consignment_and_items_each_under_their_own_number(result: Any) -> None:
    numbers = {e.tracking_number for e in result.events}
    assert numbers == {NUMBER, "CONS000123", "CONS000123A01"}
    item = [e for e in result.events if e.tracking_number == "CONS000123A01"]
    assert [e.status for e in item] == [S.IN_TRANSIT, S.AVAILABLE_FOR_PICKUP]


def test_no_codes_text_mapping_and_duplicates(article: list[Any]) -> None:
    assert all(e.carrier_code is None for e in article)
    assert [(e.status, e.substatus) for e in article] == [
        (S.INFO_RECEIVED, None),
        (S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY),  # UPU wording
        (S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY),  # "International departure"
        (S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY),  # sent twice, kept once
        (S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED),
        (S.IN_TRANSIT, None),
        (S.IN_TRANSIT, None),
        (S.OUT_FOR_DELIVERY, None),
        (S.DELIVERED, None),
    ]
    assert [e.sequence for e in article] == list(range(9))
    assert article[-1].module is M.DESTINATION


def test_system_offset_on_a_us_scan_is_not_trusted(article: list[Any]) -> None:
    los_angeles = article[2]
    assert los_angeles.location is not None and los_angeles.location.country == "US"
    assert los_angeles.utc_offset == "+11:00"  # kept as written
    assert los_angeles.occurred_at is None and los_angeles.time_basis is TimeBasis.UNKNOWN


def test_system_offset_abroad_where_the_zone_is_known(article: list[Any]) -> None:
    china = article[1]
    assert china.location is not None and china.location.country == "CN"
    assert china.occurred_at == datetime(2025, 2, 11, 10, 40, tzinfo=UTC)  # 18:40 Beijing
    assert china.time_basis is TimeBasis.LOCATION_TIMEZONE


def test_real_state_offset_is_trusted(article: list[Any]) -> None:
    sydney, melbourne = article[3], article[5]
    assert sydney.occurred_at == datetime(2025, 2, 16, 19, 15, tzinfo=UTC)
    assert sydney.time_basis is TimeBasis.CARRIER_OFFSET
    assert melbourne.time_basis is TimeBasis.CARRIER_OFFSET  # VIC keeps +11:00 in February
    assert sydney.location is not None
    assert (sydney.location.city, sydney.location.region) == ("SYDNEY", "NSW")


def test_wrong_offset_in_a_single_zone_state_uses_the_state(article: list[Any]) -> None:
    perth = article[6]  # "+11:00" on a Perth scan: Perth is +08:00
    assert perth.utc_offset == "+11:00"
    assert perth.occurred_at == datetime(2025, 2, 18, 8, 0, tzinfo=UTC)
    assert perth.time_basis is TimeBasis.LOCATION_TIMEZONE


def test_wrong_offset_in_nsw_stays_unknown() -> None:
    event = one("SYDNEY NSW", "2025-07-01T10:00:00+11:00")  # July: Sydney is +10:00
    assert event.occurred_at is None and event.time_basis is TimeBasis.UNKNOWN


def test_scan_without_location_does_not_trust_the_offset(article: list[Any]) -> None:
    first = article[0]
    assert first.location is None
    assert first.occurred_at is None and first.time_basis is TimeBasis.UNKNOWN


def test_postcode_and_country_only_places(article: list[Any]) -> None:
    delivered = article[-1].location
    assert delivered is not None
    assert (delivered.city, delivered.region, delivered.postal_code) == (
        "ALEXANDRIA",
        "NSW",
        "2015",
    )
    assert article[1].location is not None and article[1].location.city is None


def test_no_personal_data(result: Any, article: list[Any]) -> None:
    text = dumped(result)
    assert "jessica" not in text and "receiverton" not in text
    assert article[-1].description == "Delivered - Signed for by [redacted]"
    assert article[0].description == "Shipping information received by Australia Post"


def test_event_ids_are_deterministic_and_text_stands_in_for_codes(article: list[Any]) -> None:
    again = [e for e in parse(load("australia_post", "track_us_au.json")).events
             if e.tracking_number == NUMBER]  # fmt: skip
    assert [e.event_id for e in again] == [e.event_id for e in article]
    a = one("SYDNEY NSW", "2025-02-17T06:15:00+11:00", "Arrived in Australia")
    b = one("SYDNEY NSW", "2025-02-17T06:15:00+11:00", "Processed through facility")
    assert a.event_id != b.event_id


# --- errors -------------------------------------------------------------------------------------


def test_unauthorized_is_a_carrier_error() -> None:
    (error,) = parse(load("australia_post", "unauthorized_401.json"), requested="X",
                     http_status=401).errors  # fmt: skip
    assert (error.tracking_number, error.code) == ("X", "carrier_error")


def test_item_without_events_is_not_an_empty_success() -> None:
    body = {"tracking_results": [{"tracking_id": "A1", "trackable_items": [{"article_id": "A1"}]}]}
    (error,) = parse(body).errors
    assert (error.tracking_number, error.code) == ("A1", "not_found")


@pytest.mark.parametrize("body", [b"[]", b'{"tracking_results": 1}', b"{x"])
def test_unexpected_shapes_are_malformed(body: bytes) -> None:
    (error,) = parse(body, requested="X").errors
    assert error.code == "malformed"


# --- never raises -------------------------------------------------------------------------------

DOCS = [load_json("australia_post", "track_us_au.json")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_json(DOCS), http_status=st.sampled_from([200, 200, 401, 500]))
def test_never_raises_on_mutated_payloads(payload: bytes, http_status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER, http_status=http_status))


@settings(max_examples=200, deadline=None)
@given(payload=st.one_of(st.binary(max_size=200),
                         corrupted_bytes([load("australia_post", "track_us_au.json")])))  # fmt: skip
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER))


@pytest.mark.parametrize(
    ("description", "status", "substatus"),
    [
        ("Awaiting customs clearance", S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),
        ("Held by customs", S.EXCEPTION, U.IMPORT_CUSTOMS_HELD),
        ("Attempted delivery - card left", S.FAILED_ATTEMPT, None),
        ("Item awaiting collection", S.AVAILABLE_FOR_PICKUP, None),
        ("With courier for delivery", S.OUT_FOR_DELIVERY, None),
        ("Being returned to sender", S.EXCEPTION, U.RETURNING),
        ("Item lodged at Post Office", S.IN_TRANSIT, U.PICKED_UP),
        ("Undelivered", S.IN_TRANSIT, None),
    ],
)
def test_text_mapping(description: str, status: Status, substatus: Substatus | None) -> None:
    event = one("SYDNEY NSW", "2025-02-17T06:15:00+11:00", description)
    assert (event.status, event.substatus) == (status, substatus)

"""CanadaPostAdapter against real-format Tracking v2 XML (contracts §0 and §8, Canada Post)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.canada_post import ZONES, CanadaPostAdapter
from shared.taxonomy import Module, Status, Substatus, TimeBasis
from tests.unit.postal_support import (
    assert_well_formed,
    corrupted_bytes,
    dumped,
    load,
    spliced_xml,
)

ADAPTER = CanadaPostAdapter()
PIN = "1371134583769923"
S, U, M = Status, Substatus, Module


def parse(body: bytes, **kwargs: Any) -> Any:
    return ADAPTER.parse(body, **kwargs)


def occurrence(code: str, description: str, zone: str = "EST", province: str = "ON") -> bytes:
    return (
        '<tracking-detail xmlns="http://www.canadapost.ca/ws/track-v2"><pin>1</pin>'
        "<significant-events><occurrence>"
        f"<event-identifier>{code}</event-identifier><event-date>2024-11-05</event-date>"
        f"<event-time>13:31:00</event-time><event-time-zone>{zone}</event-time-zone>"
        f"<event-description>{description}</event-description><event-site>OTTAWA</event-site>"
        f"<event-province>{province}</event-province></occurrence></significant-events>"
        "</tracking-detail>"
    ).encode()


@pytest.fixture(scope="module")
def detail() -> list[Any]:
    result = parse(load("canada_post", "detail.xml"), requested=PIN)
    assert result.errors == []
    return list(result.events)


def test_codes_keep_leading_zeros_and_duplicates_are_dropped(detail: list[Any]) -> None:
    assert [e.carrier_code for e in detail] == [
        "3000",
        "0100",
        "0500",
        "0173",
        "1496",
        "0174",
        "20",
    ]
    assert [e.sequence for e in detail] == list(range(7))


def test_delivered_before_out_for_delivery_in_time(detail: list[Any]) -> None:
    delivered, out, signature = detail[4], detail[5], detail[6]
    assert delivered.status is S.DELIVERED and out.status is S.OUT_FOR_DELIVERY
    assert delivered.occurred_at is not None and out.occurred_at is not None
    assert delivered.occurred_at < out.occurred_at  # the carrier's data, kept as it is
    assert signature.status is S.DELIVERED  # code 20: signature recorded after the delivery
    assert {delivered.module, out.module, signature.module} == {M.DESTINATION}


def test_zone_abbreviations_become_offsets(detail: list[Any]) -> None:
    delivered = detail[4]
    assert delivered.occurred_at_local == "2024-11-05T13:31:00"
    assert delivered.utc_offset == "-05:00"  # EST
    assert delivered.occurred_at == datetime(2024, 11, 5, 18, 31, tzinfo=UTC)
    assert delivered.time_basis is TimeBasis.CARRIER_OFFSET
    assert detail[2].utc_offset == "-07:00"  # PDT
    assert detail[3].utc_offset == "-05:00"  # HNE, the French abbreviation


def test_unknown_abbreviation_leaves_the_instant_unknown(detail: list[Any]) -> None:
    accepted = detail[1]  # "XYZ" in British Columbia: Canada has several zones
    assert accepted.utc_offset is None
    assert accepted.occurred_at is None and accepted.time_basis is TimeBasis.UNKNOWN


def test_statuses_from_text(detail: list[Any]) -> None:
    assert [(e.status, e.substatus) for e in detail[:4]] == [
        (S.INFO_RECEIVED, None),
        (S.IN_TRANSIT, U.PICKED_UP),
        (S.IN_TRANSIT, U.DEPARTED_HUB),
        (S.IN_TRANSIT, None),
    ]


def test_locations(detail: list[Any]) -> None:
    accepted = detail[1].location
    assert accepted is not None
    assert (accepted.city, accepted.region, accepted.country) == ("VANCOUVER", "BC", "CA")
    assert accepted.facility == "MAIN STREET PO"
    assert detail[0].location is None


@pytest.mark.parametrize(
    ("code", "description", "status", "substatus"),
    [
        ("1496", "Item successfully delivered", S.DELIVERED, None),
        ("20", "Signature image recorded for Online viewing", S.DELIVERED, None),
        ("0174", "Item out for delivery", S.OUT_FOR_DELIVERY, None),
        ("0170", "Item has arrived in Canada", S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY),
        ("0904", "Item released by Canada Border Services Agency", S.IN_TRANSIT,
         U.IMPORT_CUSTOMS_RELEASED),
        ("0903", "Item held by CBSA", S.EXCEPTION, U.IMPORT_CUSTOMS_HELD),
        ("1100", "Delivery attempted - notice card left", S.FAILED_ATTEMPT, None),
        ("0168", "Item available for pickup at Post Office", S.AVAILABLE_FOR_PICKUP, None),
        ("1408", "Item being returned to sender", S.EXCEPTION, U.RETURNING),
        ("1409", "Item delivered to sender", S.RETURNED, None),
        ("0990", "Duties and taxes owing", S.EXCEPTION, U.DUTIES_PAYABLE),
    ],
)  # fmt: skip
def test_code_and_text_mapping(
    code: str, description: str, status: Status, substatus: Substatus | None
) -> None:
    (event,) = parse(occurrence(code, description)).events
    assert (event.carrier_code, event.status, event.substatus) == (code, status, substatus)


def test_every_zone_abbreviation_is_an_offset() -> None:
    for zone, offset in ZONES.items():
        (event,) = parse(occurrence("0173", "Item processed", zone=zone)).events
        assert event.utc_offset == offset, zone


def test_return_pin_is_a_hand_off_on_the_return_event() -> None:
    result = parse(load("canada_post", "detail_return.xml"))
    assert result.errors == []
    with_handoff = [e for e in result.events if e.handoff is not None]
    assert len(with_handoff) == 1
    (event,) = with_handoff
    assert event.substatus is U.RETURNING
    assert event.handoff is not None
    assert (event.handoff.carrier, event.handoff.tracking_number, event.handoff.evidence) == (
        "canada-post",
        "7023210039414611",
        "return-pin",
    )


def test_answered_pin_is_used() -> None:
    events = parse(load("canada_post", "detail.xml"), requested=" 1371 1345 8376 9923 ").events
    assert {e.tracking_number for e in events} == {PIN}


def test_no_personal_data(detail: list[Any]) -> None:
    text = dumped(parse(load("canada_post", "detail.xml")))
    assert "receiverton" not in text
    assert "0001234567" not in text and "order-55012" not in text and "k1a0b1" not in text
    assert detail[4].description == "Item successfully delivered to [redacted]"


def test_event_ids_are_deterministic(detail: list[Any]) -> None:
    again = parse(load("canada_post", "detail.xml")).events
    assert [e.event_id for e in again] == [e.event_id for e in detail]


# --- errors -------------------------------------------------------------------------------------


def test_message_004_is_not_found() -> None:
    (error,) = parse(
        load("canada_post", "not_found_404.xml"), requested=PIN, http_status=404
    ).errors
    assert (error.tracking_number, error.code) == (PIN, "not_found")
    assert "004" in error.message  # leading zeros kept


def test_messages_inside_200_are_errors_too() -> None:
    body = b"<messages><message><code>E002</code><description>Bad credentials</description></message></messages>"
    (error,) = parse(body, requested=PIN).errors
    assert error.code == "carrier_error"


def test_html_error_page() -> None:
    (error,) = parse(b"<html><body>Service Unavailable", requested=PIN, http_status=503).errors
    assert error.code == "carrier_error"


def test_detail_without_events_is_not_an_empty_success() -> None:
    body = b'<tracking-detail xmlns="http://www.canadapost.ca/ws/track-v2"><pin>1</pin></tracking-detail>'
    (error,) = parse(body).errors
    assert (error.tracking_number, error.code) == ("1", "not_found")


def test_xml_bomb_is_refused_quickly() -> None:
    started = time.monotonic()
    (error,) = parse(load("canada_post", "bomb.xml"), requested=PIN).errors
    assert error.code == "malformed"
    assert time.monotonic() - started < 1.0


# --- never raises -------------------------------------------------------------------------------

PAYLOADS = [load("canada_post", n) for n in ("detail.xml", "detail_return.xml")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=spliced_xml(PAYLOADS), http_status=st.sampled_from([200, 200, 404, 500]))
def test_never_raises_on_spliced_xml(payload: bytes, http_status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=PIN, http_status=http_status))


@settings(max_examples=200, deadline=None)
@given(payload=st.one_of(st.binary(max_size=200), corrupted_bytes(PAYLOADS)))
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=PIN))

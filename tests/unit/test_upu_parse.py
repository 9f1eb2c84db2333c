"""UpuAdapter (UPU IPS Track and Trace) and the shared EMSEVT table: tracking-standards.md exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.upu import (
    UPU_EVENTS,
    UpuAdapter,
    reason_substatus,
    upu_code_for_text,
)
from shared.taxonomy import Module, Status, Substatus, TimeBasis
from tests.unit.postal_support import (
    assert_well_formed,
    corrupted_bytes,
    dumped,
    load,
    load_json,
    mutated_json,
)

ADAPTER = UpuAdapter()
S, U, M = Status, Substatus, Module


def parse(body: bytes | dict[str, Any], **kwargs: Any) -> Any:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ADAPTER.parse(payload, **kwargs)


@pytest.fixture(scope="module")
def journey() -> list[Any]:
    result = parse(load("upu", "ips_cn_us.json"), requested="CN5180001234LOCAL", raw_ref="raw:7")
    assert result.errors == []
    return list(result.events)


# The table of reference/tracking-standards.md, "UPU EMSEVT event codes and the three modules".
STANDARD = {
    "EMA": (S.IN_TRANSIT, U.PICKED_UP, M.ORIGIN),
    "EMB": (S.IN_TRANSIT, U.ARRIVED_HUB, M.ORIGIN),
    "EXA": (S.IN_TRANSIT, U.EXPORT_CUSTOMS_PRESENTED, M.INTERNATIONAL),
    "EXB": (S.EXCEPTION, U.EXPORT_CUSTOMS_HELD, M.INTERNATIONAL),
    "EXC": (S.IN_TRANSIT, U.EXPORT_CUSTOMS_RELEASED, M.INTERNATIONAL),
    "EXD": (S.IN_TRANSIT, U.DELAYED, M.INTERNATIONAL),
    "EXX": (S.EXCEPTION, None, M.INTERNATIONAL),
    "EMC": (S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY, M.INTERNATIONAL),
    "EMJ": (S.IN_TRANSIT, None, M.INTERNATIONAL),
    "EMK": (S.IN_TRANSIT, None, M.INTERNATIONAL),
    "EMD": (S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY, M.INTERNATIONAL),
    "EDA": (S.IN_TRANSIT, U.DELAYED, M.INTERNATIONAL),
    "EDB": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED, M.INTERNATIONAL),
    "EME": (S.EXCEPTION, U.IMPORT_CUSTOMS_HELD, M.INTERNATIONAL),
    "EDC": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED, M.INTERNATIONAL),
    "EMF": (S.IN_TRANSIT, U.HANDED_OVER, M.DESTINATION),
    "EDD": (S.IN_TRANSIT, None, M.DESTINATION),
    "EDE": (S.IN_TRANSIT, None, M.DESTINATION),
    "EMG": (S.IN_TRANSIT, U.ARRIVED_HUB, M.DESTINATION),
    "EDF": (S.IN_TRANSIT, U.DELAYED, M.DESTINATION),
    "EDG": (S.OUT_FOR_DELIVERY, None, M.DESTINATION),
    "EDH": (S.AVAILABLE_FOR_PICKUP, None, M.DESTINATION),
    "EMH": (S.FAILED_ATTEMPT, None, M.DESTINATION),
    "EMI": (S.DELIVERED, None, M.DESTINATION),
    "EDX": (S.EXCEPTION, None, M.INTERNATIONAL),
}


def test_table_is_the_standard_exactly() -> None:
    assert UPU_EVENTS == STANDARD


@pytest.mark.parametrize("code", sorted(STANDARD))
def test_every_code_maps_through_parse(code: str) -> None:
    record = {"EventCd": code, "EventLocalDt": "202503141705", "OfficeCd": "GBLONA"}
    doc = {"Results": [{"Fid": "LX123456785CN", "InfoFromEdi": [record]}]}
    result = parse(doc)
    assert result.errors == []
    (event,) = result.events
    assert (event.status, event.substatus, event.module) == STANDARD[code]
    assert event.carrier_code == code


# --- time ---------------------------------------------------------------------------------------


def test_gmt_date_time_gives_the_instant_and_the_offset(journey: list[Any]) -> None:
    posting = journey[0]
    assert posting.carrier_code == "EMA"
    assert posting.occurred_at_local == "2025-03-10T09:12:00"  # as written, no offset
    assert posting.occurred_at == datetime(2025, 3, 10, 1, 12, tzinfo=UTC)
    assert posting.utc_offset == "+08:00"  # derived from LocalDateTime - GmtDateTime
    assert posting.time_basis is TimeBasis.CARRIER_UTC


def test_local_date_time_with_an_offset_is_trusted(journey: list[Any]) -> None:
    (export,) = [e for e in journey if e.carrier_code == "EXA"]
    assert export.occurred_at == datetime(2025, 3, 11, 0, 30, tzinfo=UTC)
    assert export.time_basis is TimeBasis.CARRIER_OFFSET


def test_edi_records_yyyymmddhhmm_with_colonless_offset(journey: list[Any]) -> None:
    (arrival,) = [e for e in journey if e.carrier_code == "EMD"]
    assert arrival.occurred_at_local == "2025-03-14T17:05:00"
    assert arrival.utc_offset == "-04:00"  # written "-0400"
    assert arrival.occurred_at == datetime(2025, 3, 14, 21, 5, tzinfo=UTC)
    assert arrival.location is not None and arrival.location.country == "US"  # from the IMPC


def test_edi_record_without_offset_in_a_multi_zone_country_has_no_instant(
    journey: list[Any],
) -> None:
    (customs,) = [e for e in journey if e.carrier_code == "EDB"]
    assert customs.occurred_at_local == "2025-03-14T19:00:00"
    assert customs.occurred_at is None and customs.time_basis is TimeBasis.UNKNOWN


def test_edi_record_without_offset_in_a_single_zone_country_gets_one() -> None:
    record = {"EventCd": "EMD", "EventLocalDt": "202507011200", "OfficeCd": "GBLONA"}
    (event,) = parse({"Results": [{"Fid": "LX123456785CN", "InfoFromEdi": [record]}]}).events
    assert event.occurred_at == datetime(2025, 7, 1, 11, 0, tzinfo=UTC)  # BST
    assert event.time_basis is TimeBasis.LOCATION_TIMEZONE


# --- numbers, order, duplicates ------------------------------------------------------------------


def test_answered_number_is_used(journey: list[Any]) -> None:
    assert {e.tracking_number for e in journey} == {"LX123456785CN"}  # asked: a local id


def test_unordered_events_come_out_in_journey_order_without_duplicates(
    journey: list[Any],
) -> None:
    assert [e.carrier_code for e in journey] == [
        "EMA", "EMB", "EXA", "EXC", "EMC", "EMD", "EDB", "EDC", "EMF", "EMG", "EDG", "EMH", "EMI",
    ]  # fmt: skip
    assert [e.sequence for e in journey] == list(range(13))  # the EMC sent twice is kept once
    assert len({e.event_id for e in journey}) == 13


def test_modules_statuses_and_reasons(journey: list[Any]) -> None:
    modules = [e.module for e in journey]
    assert modules[:2] == [M.ORIGIN, M.ORIGIN]
    assert modules[2:8] == [M.INTERNATIONAL] * 6
    assert modules[8:] == [M.DESTINATION] * 5
    attempt = journey[11]
    assert (attempt.status, attempt.substatus) == (S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE)
    assert "Addressee absent" in attempt.description
    assert journey[-1].status is S.DELIVERED


def test_arrival_at_inward_office_hands_over_to_the_destination_post(
    journey: list[Any],
) -> None:
    handoffs = [(e.carrier_code, e.handoff) for e in journey if e.handoff is not None]
    assert len(handoffs) == 1
    code, handoff = handoffs[0]
    assert code == "EMD"
    assert (handoff.carrier, handoff.tracking_number) == ("usps", "LX123456785CN")
    assert handoff.evidence == "OfficeCd"


def test_event_ids_are_deterministic(journey: list[Any]) -> None:
    again = parse(load("upu", "ips_cn_us.json")).events
    assert [e.event_id for e in again] == [e.event_id for e in journey]
    assert {e.raw_ref for e in journey} == {"raw:7"}


def test_no_personal_data(journey: list[Any]) -> None:
    text = dumped(parse(load("upu", "ips_cn_us.json")))
    for secret in ("jessica", "receiverton", "lane"):
        assert secret not in text


# --- text and reasons ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Departure from outward office of exchange, SGSINN", "EMC"),
        ("Arrival at inward office of exchange", "EMD"),
        ("Item presented to import customs", "EDB"),
        ("Held by import customs", "EME"),
        ("Item presented to export customs", "EXA"),
        ("Arrival at transit office of exchange", "EMJ"),
        ("Item out for physical delivery", "EDG"),
        ("Item could not be delivered", "EMH"),
        ("Final delivery", "EMI"),
        ("Posting", "EMA"),
        ("Undelivered", None),
        ("Something else", None),
    ],
)
def test_upu_wording_in_text(text: str, code: str | None) -> None:
    assert upu_code_for_text(text) == code


@pytest.mark.parametrize(
    ("reason", "substatus"),
    [
        ("Addressee absent", U.RECIPIENT_UNAVAILABLE),
        ("Refused by addressee", U.REFUSED),
        ("Incorrect address", U.ADDRESS_ISSUE),
        ("Item damaged", U.DAMAGED),
        ("Other", None),
    ],
)
def test_non_delivery_reasons(reason: str, substatus: Substatus | None) -> None:
    assert reason_substatus(reason) is substatus


# --- errors -------------------------------------------------------------------------------------


def test_unknown_item_inside_200_is_not_found() -> None:
    result = parse(load("upu", "ips_not_found.json"), requested="LX876543216CN")
    assert result.events == []
    (error,) = result.errors
    assert (error.tracking_number, error.code) == ("LX876543216CN", "not_found")


def test_errors_body_is_a_carrier_error() -> None:
    (error,) = parse(load("upu", "errors_401.json"), requested="X1", http_status=401).errors
    assert (error.tracking_number, error.code) == ("X1", "carrier_error")
    assert "Authorization failed" in error.message


def test_errors_body_inside_200_is_an_error_too() -> None:
    (error,) = parse({"Errors": ["Bad Request -- ids missing"]}, requested="X1").errors
    assert error.code == "carrier_error"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<html>oops</html>", "malformed"),
        (b"[1, 2]", "malformed"),
        (b'{"Results": []}', "not_found"),
        (b'{"Results": [42]}', "malformed"),
    ],
)
def test_unexpected_shapes(body: bytes, code: str) -> None:
    (error,) = parse(body, requested="R1").errors
    assert error.code == code


def test_bad_event_is_reported_and_the_rest_come_through() -> None:
    doc = load_json("upu", "ips_cn_us.json")
    doc["Results"][0]["OperationalMailitems"][0]["Events"][1]["LocalDateTime"] = "yesterday"
    result = parse(doc)
    assert len(result.events) == 12
    (error,) = result.errors
    assert (error.tracking_number, error.code) == ("LX123456785CN", "malformed")


# --- never raises -------------------------------------------------------------------------------

DOCS = [load_json("upu", n) for n in ("ips_cn_us.json", "ips_not_found.json")]
PAYLOADS = [load("upu", "ips_cn_us.json")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_json(DOCS), http_status=st.sampled_from([200, 200, 400, 401, 500]))
def test_never_raises_on_mutated_payloads(payload: bytes, http_status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested="LX123456785CN", http_status=http_status))


@settings(max_examples=200, deadline=None)
@given(payload=st.one_of(st.binary(max_size=200), corrupted_bytes(PAYLOADS)))
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested="LX123456785CN"))

"""LaPosteAdapter against real-format Suivi v2 answers (contracts §8, La Poste / Colissimo)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.la_poste import EVENT_CODES, LaPosteAdapter
from shared.taxonomy import Module, Status, Substatus, TimeBasis
from tests.unit.postal_support import (
    assert_well_formed,
    corrupted_bytes,
    dumped,
    load,
    load_json,
    mutated_json,
)

ADAPTER = LaPosteAdapter()
S, U, M = Status, Substatus, Module


def parse(body: bytes | Any, **kwargs: Any) -> Any:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ADAPTER.parse(payload, **kwargs)


@pytest.fixture(scope="module")
def two() -> Any:
    return parse(load("la_poste", "idships_two.json"))


def test_array_root_with_an_error_inside_200_next_to_a_good_answer(two: Any) -> None:
    (error,) = two.errors
    assert (error.tracking_number, error.code) == ("6A00000000000", "not_found")
    assert "aucun envoi" in error.message
    assert {e.tracking_number for e in two.events} == {"6A18054880019"}


def test_codes_order_and_duplicates(two: Any) -> None:
    assert [e.carrier_code for e in two.events] == [
        "DR1", "PC1", "ET1", "ET1", "MD2", "ND1", "AG1", "DI1",
    ]  # fmt: skip
    assert [e.sequence for e in two.events] == list(range(8))  # nine events, one repeated
    assert [e.status for e in two.events] == [
        S.INFO_RECEIVED, S.IN_TRANSIT, S.IN_TRANSIT, S.IN_TRANSIT, S.OUT_FOR_DELIVERY,
        S.FAILED_ATTEMPT, S.AVAILABLE_FOR_PICKUP, S.DELIVERED,
    ]  # fmt: skip


def test_iso_offsets_across_the_dst_change(two: Any) -> None:
    et1_winter, et1_summer = two.events[2], two.events[3]
    assert et1_winter.utc_offset == "+01:00" and et1_summer.utc_offset == "+02:00"
    assert et1_summer.occurred_at == datetime(2024, 3, 31, 1, 5, 12, tzinfo=UTC)
    attempt = two.events[5]  # "+0200", no colon
    assert attempt.utc_offset == "+02:00"
    assert attempt.occurred_at == datetime(2024, 4, 2, 7, 47, tzinfo=UTC)
    assert all(e.time_basis is TimeBasis.CARRIER_OFFSET for e in two.events)


def test_no_locations_and_reasons_from_the_label(two: Any) -> None:
    assert all(e.location is None for e in two.events)
    attempt = two.events[5]
    assert (attempt.substatus, attempt.module) == (U.RECIPIENT_UNAVAILABLE, M.DESTINATION)


def test_inbound_international_modules_and_customs() -> None:
    result = parse(load("la_poste", "idships_inbound.json"))
    assert result.errors == []
    assert [(e.carrier_code, e.status, e.substatus, e.module) for e in result.events] == [
        ("PC2", S.IN_TRANSIT, U.PICKED_UP, M.ORIGIN),
        ("ET4", S.IN_TRANSIT, None, M.INTERNATIONAL),
        ("ET3", S.IN_TRANSIT, None, M.DESTINATION),
        ("DO1", S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED, M.INTERNATIONAL),
        ("DO3", S.EXCEPTION, U.IMPORT_CUSTOMS_HELD, M.INTERNATIONAL),
    ]
    assert result.events[0].utc_offset == "+08:00"


@pytest.mark.parametrize("code", sorted(EVENT_CODES))
def test_every_event_code_maps(code: str) -> None:
    event = {"code": code, "label": "x", "date": "2024-04-03T10:39:00+02:00"}
    answer = {"returnCode": 200, "shipment": {"idShip": "6A18054880019", "event": [event]}}
    result = parse([answer])
    assert result.errors == []
    assert result.events[0].status is EVENT_CODES[code][0]


def test_single_object_root_is_accepted() -> None:
    doc = load_json("la_poste", "idships_two.json")[0]
    assert len(parse(doc).events) == 8


def test_no_personal_data(two: Any) -> None:
    text = dumped(two)
    assert "destinataire" not in text.replace("destinataire absent", "")
    assert "jean" not in text
    assert two.events[-1].description.endswith("[redacted]")


def test_event_ids_are_deterministic(two: Any) -> None:
    again = parse(load("la_poste", "idships_two.json")).events
    assert [e.event_id for e in again] == [e.event_id for e in two.events]


# --- errors -------------------------------------------------------------------------------------


def test_404_array_is_not_found() -> None:
    result = parse(load("la_poste", "not_found_404.json"), http_status=404)
    (error,) = result.errors
    assert (error.tracking_number, error.code) == ("6A00000000000", "not_found")


def test_okapi_401_is_a_carrier_error() -> None:
    (error,) = parse(load("la_poste", "unauthorized_401.json"), requested="X",
                     http_status=401).errors  # fmt: skip
    assert (error.tracking_number, error.code) == ("X", "carrier_error")
    assert "authentication" in error.message


def test_shipment_without_events_is_not_an_empty_success() -> None:
    (error,) = parse([{"returnCode": 200, "shipment": {"idShip": "6A1", "event": []}}]).errors
    assert (error.tracking_number, error.code) == ("6A1", "not_found")


@pytest.mark.parametrize("body", [b"[]", b"[42]", b"{oops", b'{"returnCode": 200}'])
def test_unexpected_shapes(body: bytes) -> None:
    (error,) = parse(body, requested="X").errors
    assert error.code in ("malformed", "not_found")


# --- never raises -------------------------------------------------------------------------------

DOCS = [load_json("la_poste", n) for n in ("idships_two.json", "idships_inbound.json")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_json(DOCS), http_status=st.sampled_from([200, 200, 401, 404, 500]))
def test_never_raises_on_mutated_payloads(payload: bytes, http_status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested="6A18054880019", http_status=http_status))


@settings(max_examples=200, deadline=None)
@given(payload=st.one_of(st.binary(max_size=200),
                         corrupted_bytes([load("la_poste", "idships_two.json")])))  # fmt: skip
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested="6A18054880019"))

"""RoyalMailAdapter against real-format Tracking API v2 answers (contracts §8, Royal Mail)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.royal_mail import EVENT_CODES, RoyalMailAdapter
from shared.taxonomy import Module, Status, Substatus, TimeBasis
from tests.unit.postal_support import (
    assert_well_formed,
    corrupted_bytes,
    dumped,
    load,
    load_json,
    mutated_json,
)

ADAPTER = RoyalMailAdapter()
S, U, M = Status, Substatus, Module


def parse(body: bytes | dict[str, Any], **kwargs: Any) -> Any:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ADAPTER.parse(payload, **kwargs)


@pytest.fixture(scope="module")
def domestic() -> list[Any]:
    result = parse(load("royal_mail", "events_domestic.json"), requested="090367574000000FE1E1B")
    assert result.errors == []
    return list(result.events)


def test_answered_barcode_is_used(domestic: list[Any]) -> None:
    assert {e.tracking_number for e in domestic} == {"FQ087430672GB"}  # asked: the 2D id


def test_newest_first_reversed_and_duplicates_dropped(domestic: list[Any]) -> None:
    assert [e.carrier_code for e in domestic] == [
        "EVAIP", "EVOCO", "EVORI", "EVDAV", "EVNMI", "EVKNA", "EVGPD", "EVKSP",
    ]  # fmt: skip
    assert [e.sequence for e in domestic] == list(range(8))


def test_statuses(domestic: list[Any]) -> None:
    assert [(e.status, e.substatus) for e in domestic] == [
        (S.INFO_RECEIVED, None),
        (S.IN_TRANSIT, U.PICKED_UP),
        (S.IN_TRANSIT, U.ARRIVED_HUB),
        (S.IN_TRANSIT, U.ARRIVED_HUB),
        (S.IN_TRANSIT, U.DELAYED),  # mis-sort
        (S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE),
        (S.OUT_FOR_DELIVERY, None),
        (S.DELIVERED, None),
    ]
    assert domestic[-1].module is M.DESTINATION


def test_timestamp_spellings(domestic: list[Any]) -> None:
    by_code = {e.carrier_code: e for e in domestic}
    assert by_code["EVKSP"].occurred_at == datetime(2024, 7, 4, 11, 31, tzinfo=UTC)
    assert by_code["EVKSP"].time_basis is TimeBasis.CARRIER_OFFSET
    colonless = by_code["EVGPD"]  # "+0100"
    assert colonless.utc_offset == "+01:00"
    assert colonless.occurred_at == datetime(2024, 7, 4, 6, 2, tzinfo=UTC)
    seven = by_code["EVKNA"]  # "13:15:00.1234567+01:00"
    assert seven.occurred_at_local == "2024-07-03T13:15:00.123456"
    bare = by_code["EVDAV"]  # no offset: a UK delivery office, so London time
    assert bare.utc_offset is None
    assert bare.occurred_at == datetime(2024, 7, 2, 4, 40, tzinfo=UTC)
    assert bare.time_basis is TimeBasis.LOCATION_TIMEZONE


def test_locations(domestic: list[Any]) -> None:
    office = domestic[-1].location
    assert office is not None
    assert (office.facility, office.country) == ("Stafford DO", "GB")
    assert domestic[0].location is None  # no locationName


@pytest.mark.parametrize("code", sorted(EVENT_CODES))
def test_every_event_code_maps(code: str) -> None:
    event = {"eventCode": code, "eventName": "x", "eventDateTime": "2024-07-04T12:31:00+01:00"}
    result = parse({"mailPieces": {"mailPieceId": "FQ087430672GB", "events": [event]}})
    assert result.errors == []
    assert (result.events[0].status, result.events[0].substatus) == EVENT_CODES[code]


def test_international_provider_hand_off_and_export_customs() -> None:
    result = parse(load("royal_mail", "events_international.json"))
    assert result.errors == []
    events = result.events
    assert [(e.substatus, e.module) for e in events] == [
        (U.PICKED_UP, M.ORIGIN),
        (U.EXPORT_CUSTOMS_PRESENTED, M.INTERNATIONAL),  # "export" in the text
        (U.DEPARTED_ORIGIN_COUNTRY, M.INTERNATIONAL),
    ]
    handoff = events[2].handoff
    assert handoff is not None
    assert (handoff.carrier, handoff.tracking_number) == ("usps", "LE223553042GB")
    assert handoff.evidence == "summary.internationalPostalProvider"
    assert [e.handoff is None for e in events[:2]] == [True, True]


def test_no_personal_data(domestic: list[Any]) -> None:
    text = dumped(parse(load("royal_mail", "events_domestic.json")))
    assert "recipientson" not in text and "alex" not in text
    assert domestic[-1].description == "Delivered and signed for by [redacted]"


def test_event_ids_are_deterministic(domestic: list[Any]) -> None:
    again = parse(load("royal_mail", "events_domestic.json")).events
    assert [e.event_id for e in again] == [e.event_id for e in domestic]


# --- errors -------------------------------------------------------------------------------------


def test_e1142_is_not_found() -> None:
    (error,) = parse(load("royal_mail", "error_404.json"), requested="FQ000000000GB",
                     http_status=404).errors  # fmt: skip
    assert (error.tracking_number, error.code) == ("FQ000000000GB", "not_found")


def test_per_piece_error_inside_200() -> None:
    result = parse(load("royal_mail", "summary_error_200.json"), requested="FQ000000000GB")
    assert result.events == []
    (error,) = result.errors
    assert (error.tracking_number, error.code) == ("FQ000000000GB", "not_found")


def test_unauthorized_is_a_carrier_error() -> None:
    (error,) = parse(load("royal_mail", "unauthorized_401.json"), requested="X",
                     http_status=401).errors  # fmt: skip
    assert error.code == "carrier_error" and "Client id not registered" in error.message


def test_piece_without_events_is_not_an_empty_success() -> None:
    (error,) = parse({"mailPieces": {"mailPieceId": "FQ087430672GB", "events": []}}).errors
    assert error.code == "not_found"


@pytest.mark.parametrize("body", [b"[]", b'{"mailPieces": 3}', b"<html/>"])
def test_unexpected_shapes_are_malformed(body: bytes) -> None:
    (error,) = parse(body, requested="X").errors
    assert error.code == "malformed"


# --- never raises -------------------------------------------------------------------------------

DOCS = [load_json("royal_mail", n) for n in ("events_domestic.json", "events_international.json")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_json(DOCS), http_status=st.sampled_from([200, 200, 401, 404, 500]))
def test_never_raises_on_mutated_payloads(payload: bytes, http_status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested="FQ087430672GB", http_status=http_status))


@settings(max_examples=200, deadline=None)
@given(payload=st.one_of(st.binary(max_size=200),
                         corrupted_bytes([load("royal_mail", "events_domestic.json")])))  # fmt: skip
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested="FQ087430672GB"))


@pytest.mark.parametrize(
    ("name", "status", "substatus"),
    [
        ("Item being checked by customs", S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),
        ("Item released from customs", S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED),
        ("Item held by customs", S.EXCEPTION, U.IMPORT_CUSTOMS_HELD),
        ("Fee to pay: customs charge", S.EXCEPTION, U.DUTIES_PAYABLE),
        ("Item received in the UK", S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY),
        ("Departure from outward office of exchange", S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY),
        ("Item returned to sender", S.EXCEPTION, U.RETURNING),
    ],
)
def test_events_without_a_known_code_are_read_from_their_text(
    name: str, status: Status, substatus: Substatus | None
) -> None:
    event = {"eventCode": "EVXXX", "eventName": name, "eventDateTime": "2024-07-04T12:31:00+01:00"}
    (out,) = parse({"mailPieces": {"mailPieceId": "FQ087430672GB", "events": [event]}}).events
    assert (out.status, out.substatus, out.carrier_code) == (status, substatus, "EVXXX")

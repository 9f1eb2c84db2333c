"""DhlAdapter.parse against real-format Unified API payloads: every quirk of contracts §1.1."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.base import ParseResult
from services.carriers.adapters.dhl import EXPRESS_CODES, PARCEL_DE_CODES, DhlAdapter
from shared.schema import TrackingEvent
from shared.taxonomy import Module, Source, Status, Substatus, TimeBasis

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dhl"
ADAPTER = DhlAdapter()


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def load_json(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(load(name))
    return doc


def parse(body: bytes | dict[str, Any], **kwargs: Any) -> ParseResult:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ADAPTER.parse(payload, **kwargs)


def one_event_payload(
    event: dict[str, Any], service: str = "express", origin: str = "CN", destination: str = "DE"
) -> dict[str, Any]:
    return {
        "shipments": [
            {
                "id": "1234567891",
                "service": service,
                "origin": {"address": {"countryCode": origin}},
                "destination": {"address": {"countryCode": destination}},
                "events": [event],
            }
        ]
    }


def leipzig(**fields: Any) -> dict[str, Any]:
    event = {
        "timestamp": "2025-03-11T19:30:00",
        "statusCode": "transit",
        "location": {"address": {"countryCode": "DE", "addressLocality": "LEIPZIG - GERMANY"}},
    }
    event.update(fields)
    return event


@pytest.fixture(scope="module")
def express() -> list[TrackingEvent]:
    result = parse(load("express_cn_de.json"), requested="1234567891", raw_ref="raw:1")
    assert result.errors == []
    return result.events


@pytest.fixture(scope="module")
def ecommerce() -> list[TrackingEvent]:
    result = parse(load("ecommerce_us_gb.json"), requested="GM605112270084510000")
    assert result.errors == []
    return result.events


# --- time -----------------------------------------------------------------------------------


def test_wall_time_kept_and_instant_derived_where_zone_is_unambiguous(
    express: list[TrackingEvent],
) -> None:
    first, last = express[0], express[-1]
    assert first.occurred_at_local == "2025-03-10T09:00:00"  # Shenzhen, as DHL wrote it
    assert first.utc_offset is None
    assert first.occurred_at == datetime(2025, 3, 10, 1, 0, tzinfo=UTC)
    assert first.time_basis is TimeBasis.LOCATION_TIMEZONE
    assert last.occurred_at_local == "2025-03-12T14:05:00"  # Berlin, CET
    assert last.occurred_at == datetime(2025, 3, 12, 13, 5, tzinfo=UTC)  # = status.timestamp Z
    assert all(e.time_basis is TimeBasis.LOCATION_TIMEZONE for e in express)


def test_us_events_have_no_instant_and_gb_events_do(ecommerce: list[TrackingEvent]) -> None:
    us = [e for e in ecommerce if e.location and e.location.country == "US"]
    gb = [e for e in ecommerce if e.location and e.location.country == "GB"]
    assert len(us) == 3 and len(gb) == 5
    for event in us:
        assert event.occurred_at is None and event.time_basis is TimeBasis.UNKNOWN
        assert event.occurred_at_local is not None
    delivered = ecommerce[-1]
    assert delivered.occurred_at == datetime(2025, 3, 14, 11, 20, tzinfo=UTC)  # GMT in March
    assert all(e.time_basis is TimeBasis.LOCATION_TIMEZONE for e in gb)


def test_event_without_location_has_unknown_instant(ecommerce: list[TrackingEvent]) -> None:
    first = ecommerce[0]
    assert first.location is None
    assert first.occurred_at is None and first.time_basis is TimeBasis.UNKNOWN
    assert first.occurred_at_local == "2025-03-11T20:00:00"
    assert first.module is None


def test_z_timestamp_is_carrier_utc_and_offsets_are_kept() -> None:
    doc = load_json("express_cn_de.json")
    del doc["shipments"][0]["events"]  # only the latest status left: it is used as the event
    (event,) = parse(doc).events
    assert event.occurred_at_local == "2025-03-12T13:05:00"
    assert event.utc_offset == "+00:00"
    assert event.occurred_at == datetime(2025, 3, 12, 13, 5, tzinfo=UTC)
    assert event.time_basis is TimeBasis.CARRIER_UTC
    offset = parse(one_event_payload(leipzig(timestamp="2025-03-11T19:30:00+05:30"))).events[0]
    assert offset.utc_offset == "+05:30"
    assert offset.occurred_at == datetime(2025, 3, 11, 14, 0, tzinfo=UTC)
    assert offset.time_basis is TimeBasis.CARRIER_OFFSET


# --- order, numbers, codes --------------------------------------------------------------------


def test_sequence_reverses_newest_first_payload(express: list[TrackingEvent]) -> None:
    payload_events = load_json("express_cn_de.json")["shipments"][0]["events"]
    assert [e.sequence for e in express] == list(range(len(payload_events)))
    assert [e.occurred_at_local for e in express] == [
        ev["timestamp"] for ev in reversed(payload_events)
    ]
    assert express[0].status is Status.INFO_RECEIVED
    assert express[-1].status is Status.DELIVERED


def test_returned_numeric_id_is_the_tracking_number(ecommerce: list[TrackingEvent]) -> None:
    # asked for the GM reference, DHL answered with a 22-digit JSON number: kept digit for digit
    assert {e.tracking_number for e in ecommerce} == {"9261290100830000000012"}
    assert {e.carrier for e in ecommerce} == {"dhl"}


def test_codes_are_strings_and_detailed_codes_win() -> None:
    result = parse(load("two_shipments.json"), requested="PO-881")
    assert result.errors == []
    by_number: dict[str, list[TrackingEvent]] = {}
    for event in result.events:
        by_number.setdefault(event.tracking_number, []).append(event)
    assert set(by_number) == {"7777777770", "00340434161094022115"}  # leading zeros kept
    assert [e.carrier_code for e in by_number["7777777770"]] == ["PU", "DF", "AF", "CR", "WC", "OK"]
    parcel = by_number["00340434161094022115"]
    assert [e.carrier_code for e in parcel] == ["VA", "ES", "PO", "ZN", "ZF"]
    assert [e.status for e in parcel] == [
        Status.INFO_RECEIVED,
        Status.IN_TRANSIT,
        Status.OUT_FOR_DELIVERY,
        Status.FAILED_ATTEMPT,
        Status.AVAILABLE_FOR_PICKUP,
    ]
    assert parcel[2].description == "The shipment has been loaded onto the delivery vehicle."
    assert [e.sequence for e in parcel] == [0, 1, 2, 3, 4]


def test_express_detailed_codes_with_route() -> None:
    events = {e.carrier_code: e for e in parse(load("two_shipments.json")).events}
    assert (events["PU"].substatus, events["PU"].module) == (Substatus.PICKED_UP, Module.ORIGIN)
    assert (events["DF"].substatus, events["DF"].module) == (Substatus.DEPARTED_HUB, Module.ORIGIN)
    # first scan in the destination country: the arrival there
    assert events["AF"].substatus is Substatus.ARRIVED_DESTINATION_COUNTRY
    assert events["AF"].module is Module.INTERNATIONAL
    assert events["CR"].substatus is Substatus.IMPORT_CUSTOMS_RELEASED
    assert (events["WC"].status, events["WC"].module) == (
        Status.OUT_FOR_DELIVERY,
        Module.DESTINATION,
    )


def test_status_code_is_carrier_code_without_detailed_code(
    express: list[TrackingEvent], ecommerce: list[TrackingEvent]
) -> None:
    assert express[0].carrier_code == "pre-transit"
    assert {e.carrier_code for e in ecommerce} == {"pre-transit", "transit", "unknown", "delivered"}


@pytest.mark.parametrize(
    ("code", "status", "substatus"),
    [
        ("NH", Status.FAILED_ATTEMPT, Substatus.RECIPIENT_UNAVAILABLE),
        ("BA", Status.EXCEPTION, Substatus.ADDRESS_ISSUE),
        ("RD", Status.EXCEPTION, Substatus.REFUSED),
        ("RT", Status.RETURNED, None),
        ("CC", Status.AVAILABLE_FOR_PICKUP, None),
        ("IC", Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_PRESENTED),
        ("CD", Status.EXCEPTION, Substatus.IMPORT_CUSTOMS_HELD),
        ("UD", Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_HELD),
        ("MS", Status.IN_TRANSIT, Substatus.DELAYED),
        ("TP", Status.IN_TRANSIT, Substatus.HANDED_OVER),
        ("OK", Status.DELIVERED, None),
    ],
)
def test_express_code_mapping(code: str, status: Status, substatus: Substatus | None) -> None:
    (event,) = parse(one_event_payload(leipzig(statusDetailed=code, status="text"))).events
    assert (event.status, event.substatus, event.carrier_code) == (status, substatus, code)


def test_every_detailed_code_maps_through_parse() -> None:
    for service, table in (("express", EXPRESS_CODES), ("parcel-de", PARCEL_DE_CODES)):
        for code, (status, _) in table.items():
            result = parse(one_event_payload(leipzig(status=code), service=service))
            assert result.errors == [] and result.events[0].status is status, code


# --- text mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_code", "text", "description", "status", "substatus"),
    [
        (
            "transit",
            "Clearance delay",
            "Awaiting documents",
            Status.IN_TRANSIT,
            Substatus.IMPORT_CUSTOMS_HELD,
        ),
        (
            "transit",
            "Customs status updated",
            None,
            Status.IN_TRANSIT,
            Substatus.IMPORT_CUSTOMS_PRESENTED,
        ),
        (
            "transit",
            "Clearance processing complete at LEIPZIG - GERMANY",
            None,
            Status.IN_TRANSIT,
            Substatus.IMPORT_CUSTOMS_RELEASED,
        ),
        (
            "transit",
            "Customs status updated",
            "Duties and taxes due",
            Status.IN_TRANSIT,
            Substatus.DUTIES_PAYABLE,
        ),
        (
            "transit",
            "Customs status updated",
            "Duties and taxes paid",
            Status.IN_TRANSIT,
            Substatus.DUTIES_PAID,
        ),
        (
            "failure",
            "Delivery attempted",
            "Recipient not home",
            Status.FAILED_ATTEMPT,
            Substatus.RECIPIENT_UNAVAILABLE,
        ),
        ("failure", "Returned to shipper", None, Status.RETURNED, None),
        ("failure", "Shipment damaged", None, Status.EXCEPTION, Substatus.DAMAGED),
        ("failure", "Something went wrong", None, Status.EXCEPTION, None),
        (
            "transit",
            "Shipment is out with courier for delivery",
            None,
            Status.OUT_FOR_DELIVERY,
            None,
        ),
        (
            "transit",
            "Awaiting collection at service point",
            None,
            Status.AVAILABLE_FOR_PICKUP,
            None,
        ),
        ("transit", "Shipment delayed", None, Status.IN_TRANSIT, Substatus.DELAYED),
        ("unknown", "CLOSE BAG", None, Status.IN_TRANSIT, None),
        ("pre-transit", "Shipment information received", None, Status.INFO_RECEIVED, None),
        ("delivered", "Delivered - left at front door", None, Status.DELIVERED, None),
    ],
)
def test_text_mapping(
    status_code: str,
    text: str,
    description: str | None,
    status: Status,
    substatus: Substatus | None,
) -> None:
    fields: dict[str, Any] = {"statusCode": status_code, "status": text}
    if description is not None:
        fields["description"] = description
    result = parse(one_event_payload(leipzig(**fields)))
    assert result.errors == []
    assert (result.events[0].status, result.events[0].substatus) == (status, substatus)


def test_customs_in_origin_country_is_export() -> None:
    event = leipzig(status="Customs status updated", description="Shipment is in customs clearance")
    (out,) = parse(one_event_payload(event, origin="DE", destination="US")).events
    assert out.substatus is Substatus.EXPORT_CUSTOMS_PRESENTED
    assert out.module is Module.INTERNATIONAL


def test_express_statuses_substatuses_and_modules(express: list[TrackingEvent]) -> None:
    assert [(e.status, e.substatus, e.module) for e in express] == [
        (Status.INFO_RECEIVED, None, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.PICKED_UP, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.EXPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.DEPARTED_HUB, Module.INTERNATIONAL),  # Hong Kong transit
        (Status.IN_TRANSIT, Substatus.ARRIVED_DESTINATION_COUNTRY, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_PRESENTED, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.ARRIVED_HUB, Module.DESTINATION),
        (Status.OUT_FOR_DELIVERY, None, Module.DESTINATION),
        (Status.DELIVERED, None, Module.DESTINATION),
    ]


def test_ecommerce_quirks(ecommerce: list[TrackingEvent]) -> None:
    close_bag, open_bag = ecommerce[2], ecommerce[6]
    assert (close_bag.carrier_code, close_bag.status) == ("unknown", Status.IN_TRANSIT)
    assert close_bag.module is Module.ORIGIN
    assert open_bag.description == "OPEN BAG"  # no description: the text sits in status
    assert open_bag.module is Module.DESTINATION
    assert open_bag.location is not None
    assert (open_bag.location.city, open_bag.location.postal_code) == ("HEATHROW", None)
    assert open_bag.location.country == "GB"  # only given inside "HEATHROW, GB"
    customs = ecommerce[5]
    assert customs.substatus is Substatus.IMPORT_CUSTOMS_RELEASED
    assert ecommerce[3].substatus is Substatus.DEPARTED_ORIGIN_COUNTRY
    assert ecommerce[4].substatus is Substatus.ARRIVED_DESTINATION_COUNTRY
    assert [e.status for e in ecommerce[-2:]] == [Status.OUT_FOR_DELIVERY, Status.DELIVERED]


def test_source_and_raw_ref_pass_through() -> None:
    result = parse(load("express_cn_de.json"), raw_ref="raw:9", source=Source.CARRIER_WEBHOOK)
    assert {(e.raw_ref, e.source) for e in result.events} == {("raw:9", Source.CARRIER_WEBHOOK)}


# --- identity and privacy ---------------------------------------------------------------------


def test_event_ids_are_deterministic(express: list[TrackingEvent]) -> None:
    again = parse(load("express_cn_de.json")).events
    assert [e.event_id for e in again] == [e.event_id for e in express]
    assert len({e.event_id for e in express}) == len(express)


def test_event_id_depends_on_location() -> None:
    doc = load_json("express_cn_de.json")
    moved = copy.deepcopy(doc)
    moved["shipments"][0]["events"][2]["location"]["address"]["addressLocality"] = "POTSDAM"
    before, after = parse(doc).events, parse(moved).events
    changed = [a.event_id != b.event_id for a, b in zip(before, after, strict=True)]
    assert changed == [False] * 7 + [True] + [False] * 2  # payload index 2 is sequence 7


def test_no_personal_data_in_events() -> None:
    for name in ("express_cn_de.json", "ecommerce_us_gb.json"):
        events = parse(load(name)).events
        dumped = "\n".join(e.model_dump_json() for e in events).lower()
        for secret in (
            "jessica",
            "receiverton",
            "gadgetwerk",
            "parcelford",
            "proview",
            "signatureurl",
        ):
            assert secret not in dumped, (name, secret)
    assert "[redacted]" in parse(load("express_cn_de.json")).events[-1].description


# --- errors -----------------------------------------------------------------------------------


def test_not_found_problem_document() -> None:
    result = parse(load("not_found_404.json"), requested="1234567892", http_status=404)
    assert result.events == []
    (error,) = result.errors
    assert (error.tracking_number, error.code) == ("1234567892", "not_found")


def test_not_found_without_json_body() -> None:
    (error,) = parse(b"<html>not found</html>", requested="X1", http_status=404).errors
    assert (error.tracking_number, error.code) == ("X1", "not_found")


@pytest.mark.parametrize(
    ("status", "title", "detail"),
    [
        (400, "Bad Request", "trackingNumber is required."),
        (401, "Unauthorized", "Unauthorized for given resource."),
        (429, "Too Many Requests", "Too many requests within defined time period."),
        (503, "Service Unavailable", "Try later."),
    ],
)
def test_other_problem_documents_are_carrier_errors(status: int, title: str, detail: str) -> None:
    body = {"title": title, "status": status, "detail": detail}
    (error,) = parse(body, requested="1234567891", http_status=status).errors
    assert (error.tracking_number, error.code) == ("1234567891", "carrier_error")
    assert title in error.message and detail in error.message


def test_garbage_is_malformed() -> None:
    result = parse(load("garbage.json"), requested="1234567891")
    (error,) = result.errors
    assert (error.tracking_number, error.code) == ("1234567891", "malformed")
    assert "invalid JSON" in error.message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[1, 2]", "shipments"),
        (b'{"shipments": {"id": 1}}', "shipments"),
        (b'{"shipments": [42]}', "shipments[0]"),
        (b'{"shipments": [{"events": []}]}', "id"),
        (b'{"shipments": [{"id": true}]}', "id"),
    ],
)
def test_unexpected_shape_is_malformed(body: bytes, fragment: str) -> None:
    (error,) = parse(body, requested="R1").errors
    assert (error.tracking_number, error.code) == ("R1", "malformed")
    assert fragment in error.message


def test_bad_event_is_skipped_and_the_rest_come_through() -> None:
    doc = load_json("express_cn_de.json")
    events = doc["shipments"][0]["events"]
    del events[0]["timestamp"]
    events[1]["timestamp"] = "yesterday"
    events[2] = "not an event"
    result = parse(doc)
    assert len(result.events) == 7
    assert len(result.errors) == 3
    assert {(e.tracking_number, e.code) for e in result.errors} == {("1234567891", "malformed")}
    assert [e.sequence for e in result.events] == list(range(7))  # positions of survivors


# --- never raises ----------------------------------------------------------------------------

BASE_DOCS = [
    load_json(n) for n in ("express_cn_de.json", "ecommerce_us_gb.json", "two_shipments.json")
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        found.extend(_paths(child, (*prefix, key)))
    return found


def _mutate(doc: Any, path: tuple[Any, ...], delete: bool, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    doc = copy.deepcopy(draw(st.sampled_from(BASE_DOCS)))
    for _ in range(draw(st.integers(1, 5))):
        path = draw(st.sampled_from(_paths(doc)))
        doc = _mutate(doc, path, draw(st.booleans()), draw(JSON_VALUES))
    return json.dumps(doc).encode()


@st.composite
def corrupted_bytes(draw: st.DrawFn) -> bytes:
    data = bytearray(load(draw(st.sampled_from(["express_cn_de.json", "two_shipments.json"]))))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position : position + draw(st.integers(0, 4))] = draw(st.binary(max_size=4))
    return bytes(data)


def _assert_well_formed(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    # every failure is reported by a specific check, not by the catch-all at the boundary
    assert not [e for e in result.errors if e.message.startswith("unexpected payload")]
    for event in result.events:
        assert isinstance(event, TrackingEvent)
        TrackingEvent.model_validate_json(event.model_dump_json())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads(), http_status=st.sampled_from([200, 200, 200, 404, 429, 500]))
def test_never_raises_on_mutated_payloads(payload: bytes, http_status: int) -> None:
    _assert_well_formed(ADAPTER.parse(payload, requested="1234567891", http_status=http_status))


@settings(max_examples=200, deadline=None)
@given(payload=st.one_of(st.binary(max_size=200), corrupted_bytes()))
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    _assert_well_formed(ADAPTER.parse(payload, requested="1234567891"))


def test_never_raises_on_deep_nesting_and_huge_numbers() -> None:
    for payload in (
        b"[" * 100_000,
        b'{"shipments": [{"id": 1e999, "events": []}]}',
        b'{"shipments": [{"id": "1", "events": [{"timestamp": 5}]}]}',
    ):
        _assert_well_formed(ADAPTER.parse(payload))

"""CainiaoAdapter.parse against real-format detail.json payloads: contracts §6.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.base import ParseResult
from services.carriers.adapters.cainiao import ACTION_CODES, CainiaoAdapter
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

ADAPTER = CainiaoAdapter()
NUMBER = "LP00683712345678"
JOURNEY = "cn_es_station_then_delivered.json"


def parse(body: bytes | dict[str, Any], **kwargs: Any) -> ParseResult:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ADAPTER.parse(payload, **kwargs)


@pytest.fixture(scope="module")
def events() -> list[TrackingEvent]:
    result = parse(fixture("cainiao", JOURNEY), requested=NUMBER)
    assert result.errors == []
    return result.events


def code_of(events: list[TrackingEvent], action: str) -> TrackingEvent:
    (event,) = [e for e in events if e.carrier_code == action]
    return event


def test_journey_order_and_the_repeat(events: list[TrackingEvent]) -> None:
    assert len(fixture_json("cainiao", JOURNEY)["module"][0]["detailList"]) == 17
    assert [e.sequence for e in events] == list(range(16))
    assert events[0].carrier_code == "GWMS_ACCEPT" and events[-1].carrier_code == "GTMS_SIGNED"


def test_epoch_is_the_instant_and_time_str_the_wall_time(events: list[TrackingEvent]) -> None:
    first = events[0]
    assert (first.occurred_at_local, first.utc_offset) == ("2025-03-08T10:00:00", "+08:00")
    assert first.occurred_at == datetime(2025, 3, 8, 2, 0, tzinfo=UTC)
    assert first.time_basis is TimeBasis.CARRIER_UTC
    madrid = code_of(events, "CC_IM_START")
    assert (madrid.occurred_at_local, madrid.utc_offset) == ("2025-03-11T15:00:00", "+01:00")


def test_blank_time_zone_assumes_nothing(events: list[TrackingEvent]) -> None:
    arrival = code_of(events, "LH_ARRIVE")  # timeZone "" and no timeStr
    assert arrival.occurred_at == datetime(2025, 3, 11, 9, 20, tzinfo=UTC)
    assert (arrival.occurred_at_local, arrival.utc_offset) == ("2025-03-11T09:20:00", "+00:00")


def test_blank_time_zone_with_time_str_keeps_the_wall_time_without_an_offset() -> None:
    doc = fixture_json("cainiao", JOURNEY)
    detail = doc["module"][0]["detailList"][0]
    detail["timeZone"] = ""
    last = parse(doc).events[-1]
    assert (last.occurred_at_local, last.utc_offset) == ("2025-03-15T12:45:00", None)
    assert last.occurred_at == datetime(2025, 3, 15, 11, 45, tzinfo=UTC)


def test_statuses_substatuses_and_modules(events: list[TrackingEvent]) -> None:
    assert [(e.status, e.substatus, e.module) for e in events] == [
        (Status.INFO_RECEIVED, None, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.DEPARTED_HUB, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.ARRIVED_HUB, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.DEPARTED_HUB, Module.ORIGIN),
        (Status.IN_TRANSIT, Substatus.EXPORT_CUSTOMS_PRESENTED, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.EXPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.HANDED_OVER, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.DEPARTED_ORIGIN_COUNTRY, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.ARRIVED_DESTINATION_COUNTRY, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_PRESENTED, Module.INTERNATIONAL),
        (Status.EXCEPTION, Substatus.IMPORT_CUSTOMS_HELD, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        (Status.IN_TRANSIT, Substatus.HANDED_OVER, Module.DESTINATION),
        (Status.OUT_FOR_DELIVERY, None, Module.DESTINATION),
        (Status.AVAILABLE_FOR_PICKUP, None, Module.DESTINATION),  # station signed, not the buyer
        (Status.DELIVERED, None, Module.DESTINATION),
    ]


def test_every_action_code_maps_through_parse() -> None:
    doc = fixture_json("cainiao", JOURNEY)
    for action, (status, substatus, module) in ACTION_CODES.items():
        doc["module"][0]["detailList"] = [{"time": 1741400000000, "timeZone": "GMT+8",
                                           "desc": "step", "actionCode": action}]  # fmt: skip
        (event,) = parse(doc).events
        assert (event.status, event.substatus) == (status, substatus), action
        assert module is None or event.module is module, action


def test_unknown_action_code_falls_back_to_the_text() -> None:
    doc = fixture_json("cainiao", JOURNEY)
    doc["module"][0]["detailList"] = [
        {
            "time": 1741400000000,
            "timeZone": "GMT+8",
            "desc": "Out for delivery",
            "actionCode": "NEW",
        }
    ]
    (event,) = parse(doc).events
    assert (event.carrier_code, event.status) == ("NEW", Status.OUT_FOR_DELIVERY)


def test_hand_off_named_in_the_text(events: list[TrackingEvent]) -> None:
    handoff = code_of(events, "GTMS_ACCEPT").handoff
    assert handoff is not None
    assert (handoff.carrier, handoff.tracking_number) == ("correos", "PQ4F6P0700012345028001M")
    assert [e.carrier_code for e in events if e.handoff] == ["GTMS_ACCEPT"]


def test_no_personal_data_and_deterministic_ids(events: list[TrackingEvent]) -> None:
    assert "ferrandez" not in dumped(ParseResult(events=events))
    again = parse(fixture("cainiao", JOURNEY)).events
    assert [e.event_id for e in again] == [e.event_id for e in events]


def test_empty_detail_list_is_not_found_inside_200() -> None:
    (error,) = parse(fixture("cainiao", "not_found.json"), requested="LP00999999999999").errors
    assert (error.tracking_number, error.code) == ("LP00999999999999", "not_found")


def test_failed_request_is_a_carrier_error() -> None:
    body = {"success": False, "errorCode": "SYSTEM_BUSY", "errorMsg": "system busy"}
    (error,) = parse(body, requested=NUMBER).errors
    assert (error.tracking_number, error.code) == (NUMBER, "carrier_error")


def test_epoch_as_string_and_time_str_only() -> None:
    doc = fixture_json("cainiao", JOURNEY)
    doc["module"][0]["detailList"] = [
        {"time": "1741400000000", "timeZone": "GMT+8", "desc": "a", "actionCode": "CW_INBOUND"},
        {"timeStr": "2025-03-08 10:30:00", "timeZone": "GMT+8", "desc": "b", "actionCode": "CW_OUTBOUND"},
    ]  # fmt: skip
    first, second = parse(doc).events  # the times say oldest first, whatever the listing
    assert (first.carrier_code, first.time_basis) == ("CW_INBOUND", TimeBasis.CARRIER_UTC)
    assert first.occurred_at == datetime(2025, 3, 8, 2, 13, 20, tzinfo=UTC)
    assert second.occurred_at == datetime(2025, 3, 8, 2, 30, tzinfo=UTC)
    assert second.time_basis is TimeBasis.CARRIER_OFFSET


DOCS = [fixture_json("cainiao", JOURNEY), fixture_json("cainiao", "not_found.json")]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads(DOCS), status=st.sampled_from([200, 200, 200, 500]))
def test_never_raises_on_mutated_payloads(payload: bytes, status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER, http_status=status))


@settings(max_examples=150, deadline=None)
@given(payload=corrupted_bytes([fixture("cainiao", JOURNEY)]))
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER))


def test_never_raises_on_hostile_payloads() -> None:
    check_hostile(lambda p: ADAPTER.parse(p, requested=NUMBER))
    huge = {"module": [{"mailNo": NUMBER, "detailList": [{"time": 10**30, "actionCode": "X"}]}]}
    assert_well_formed(parse(huge))

"""17TRACK, AfterShip and EasyPost pushes: mapping, time, modules, hand-offs, privacy, robustness.

Every quirk of reference/carrier-contracts.md §7 has a payload here, in each aggregator's real
wire format (fixtures under tests/fixtures/{track17,aftership,easypost}).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.aftership import SUBTAGS, AftershipAdapter
from services.carriers.adapters.base import Adapter, ParseResult
from services.carriers.adapters.easypost import STATUS_DETAILS, EasypostAdapter
from services.carriers.adapters.track17 import STAGES, SUB_STATUSES, Track17Adapter
from services.carriers.webhook_samples import sample_payload
from shared.schema import TrackingEvent
from shared.taxonomy import Module, Source, Status, Substatus, TimeBasis

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TRACK17, AFTERSHIP, EASYPOST = Track17Adapter(), AftershipAdapter(), EasypostAdapter()
S, U = Status, Substatus


def load(folder: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / folder / name).read_bytes())
    return doc


def parse(adapter: Adapter, doc: dict[str, Any] | bytes, **kwargs: Any) -> ParseResult:
    payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return adapter.parse(payload, **kwargs)


def ok(adapter: Adapter, doc: dict[str, Any] | bytes, **kwargs: Any) -> list[TrackingEvent]:
    result = parse(adapter, doc, **kwargs)
    assert result.errors == []
    return result.events


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- 17TRACK ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def track17() -> list[TrackingEvent]:
    doc = load("track17", "updated_cn_us_two_providers.json")
    return ok(TRACK17, doc, raw_ref="raw:17")


def track17_event(**fields: Any) -> dict[str, Any]:
    """A TRACKING_UPDATED push with one China Post event (CN → US)."""
    event: dict[str, Any] = {
        "time_iso": "2025-03-04T16:00:00+08:00",
        "time_utc": "2025-03-04T08:00:00Z",
        "description": "In transit",
        "location": "GUANGZHOU",
        "stage": None,
        "sub_status": None,
        "address": {"country": "CN", "city": "GUANGZHOU"},
    }
    event.update(fields)
    return {
        "event": "TRACKING_UPDATED",
        "data": {
            "number": "LX123456785CN",
            "carrier": 3011,
            "track_info": {
                "shipping_info": {
                    "shipper_address": {"country": "CN"},
                    "recipient_address": {"country": "US"},
                },
                "tracking": {"providers": [{"provider": {"key": 3011}, "events": [event]}]},
            },
        },
    }


def test_track17_providers_merged_oldest_first_without_the_repeated_scan(
    track17: list[TrackingEvent],
) -> None:
    assert [e.description for e in track17] == [
        "Posting/Collection",
        "离开深圳市 发往广州市（经转）",
        "Handed over to customs",
        "Departure from outward office of exchange",
        "Arrival at inward office of exchange",
        "Customs clearance processing complete",  # relayed by both providers, kept once
        "Arrived at USPS Regional Facility",
        "Out for Delivery",
        "Delivered, Left with Individual. Signed by: [redacted]",
    ]
    assert [e.sequence for e in track17] == list(range(9))
    assert {e.carrier for e in track17} == {"17track"}
    assert {e.tracking_number for e in track17} == {"LX123456785CN"}
    assert {e.source for e in track17} == {Source.AGGREGATOR}
    assert {e.raw_ref for e in track17} == {"raw:17"}


def test_track17_status_substatus_and_module_along_the_journey(
    track17: list[TrackingEvent],
) -> None:
    assert [(e.status, e.substatus, e.module) for e in track17] == [
        (S.IN_TRANSIT, U.PICKED_UP, Module.ORIGIN),
        (S.IN_TRANSIT, U.DEPARTED_HUB, Module.ORIGIN),  # no code: the Chinese text decides
        (S.IN_TRANSIT, U.EXPORT_CUSTOMS_PRESENTED, Module.INTERNATIONAL),  # customs in CN
        (S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY, Module.INTERNATIONAL),
        (S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY, Module.INTERNATIONAL),
        (S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        (S.IN_TRANSIT, U.ARRIVED_HUB, Module.DESTINATION),
        (S.OUT_FOR_DELIVERY, None, Module.DESTINATION),
        (S.DELIVERED, None, Module.DESTINATION),
    ]


def test_track17_time_utc_is_the_instant_and_time_iso_the_wall_time(
    track17: list[TrackingEvent],
) -> None:
    departure = track17[3]
    assert departure.occurred_at_local == "2025-03-05T02:15:00"
    assert departure.utc_offset == "+08:00"
    assert departure.occurred_at == utc(2025, 3, 4, 18, 15)
    assert departure.time_basis is TimeBasis.CARRIER_UTC


def test_track17_time_without_offset_resolved_only_where_the_country_fixes_the_zone(
    track17: list[TrackingEvent],
) -> None:
    shenzhen, new_york = track17[1], track17[6]
    assert (shenzhen.occurred_at_local, shenzhen.utc_offset) == ("2025-03-03T18:40:00", None)
    assert shenzhen.occurred_at == utc(2025, 3, 3, 10, 40)
    assert shenzhen.time_basis is TimeBasis.LOCATION_TIMEZONE
    assert new_york.occurred_at_local == "2025-03-13T21:10:00"
    assert new_york.occurred_at is None and new_york.time_basis is TimeBasis.UNKNOWN


def test_track17_time_raw_is_the_last_resort() -> None:
    raw = {"date": "2025-03-04", "time": "16:00:00", "timezone": "+08:00"}
    (event,) = ok(TRACK17, track17_event(time_iso=None, time_utc=None, time_raw=raw))
    assert event.occurred_at_local == "2025-03-04T16:00:00" and event.utc_offset == "+08:00"
    assert event.occurred_at == utc(2025, 3, 4, 8) and event.time_basis is TimeBasis.CARRIER_OFFSET
    odd_zone = dict(raw, timezone="Beijing")
    (event,) = ok(TRACK17, track17_event(time_iso=None, time_utc=None, time_raw=odd_zone))
    assert event.time_basis is TimeBasis.LOCATION_TIMEZONE  # CN has one zone


def test_track17_only_time_utc() -> None:
    (event,) = ok(TRACK17, track17_event(time_iso=None))
    assert event.occurred_at == utc(2025, 3, 4, 8) and event.time_basis is TimeBasis.CARRIER_UTC
    assert event.occurred_at_local == "2025-03-04T08:00:00" and event.utc_offset == "+00:00"


def test_track17_carrier_code_names_the_provider_then_the_code(
    track17: list[TrackingEvent],
) -> None:
    assert track17[0].carrier_code == "3011:InTransit_PickedUp"
    assert track17[1].carrier_code == "3011"  # neither sub_status nor stage
    assert track17[8].carrier_code == "21051:Delivered_Other"


@pytest.mark.parametrize("sub_status", sorted(SUB_STATUSES))
def test_track17_sub_status_table(sub_status: str) -> None:
    status, substatus = SUB_STATUSES[sub_status]
    (event,) = ok(TRACK17, track17_event(sub_status=sub_status, address={"country": "US"}))
    assert event.status is status
    assert event.substatus is substatus


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_track17_stage_when_sub_status_is_missing(stage: str) -> None:
    status, substatus = STAGES[stage]
    (event,) = ok(TRACK17, track17_event(stage=stage, sub_status="", address={"country": "US"}))
    assert (event.status, event.substatus) == (status, substatus)


@pytest.mark.parametrize(
    ("sub_status", "stage", "description", "expected"),
    [
        ("InTransit_Other", "Departure", "x", (S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY)),
        (
            "DeliveryFailure_Other",
            None,
            "Recipient not available",
            (S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE),
        ),
        ("Exception_Other", None, "Held by customs", (S.EXCEPTION, U.EXPORT_CUSTOMS_HELD)),  # in CN
        ("Delivered_Other", None, "Delivered, left at the front door", (S.DELIVERED, None)),
        ("NotFound_Other", None, "Out for delivery", (S.OUT_FOR_DELIVERY, None)),
        (None, None, "到达投递局", (S.IN_TRANSIT, U.ARRIVED_HUB)),
        (None, None, "已签收，签收人：张伟", (S.DELIVERED, None)),
        (None, None, "Returned to sender", (S.RETURNED, None)),
        (None, None, "", (S.IN_TRANSIT, None)),
    ],
)
def test_track17_generic_codes_refined_from_the_text(
    sub_status: str | None, stage: str | None, description: str, expected: tuple[Status, Any]
) -> None:
    doc = track17_event(sub_status=sub_status, stage=stage, description=description)
    (event,) = ok(TRACK17, doc)
    assert (event.status, event.substatus) == expected


def test_track17_customs_side_follows_the_country() -> None:
    (at_origin,) = ok(TRACK17, track17_event(sub_status="InTransit_CustomsReleased"))
    assert at_origin.substatus is U.EXPORT_CUSTOMS_RELEASED
    us = {"country": "US", "city": "CHICAGO"}
    (at_destination,) = ok(
        TRACK17, track17_event(sub_status="InTransit_CustomsReleased", address=us)
    )
    assert at_destination.substatus is U.IMPORT_CUSTOMS_RELEASED


def test_track17_local_number_is_a_handoff_on_the_first_last_mile_event(
    track17: list[TrackingEvent],
) -> None:
    with_handoff = [e for e in track17 if e.handoff]
    assert len(with_handoff) == 1
    event = with_handoff[0]
    assert event.description == "Arrived at USPS Regional Facility"
    assert event.carrier_code is not None and event.carrier_code.startswith("21051")
    assert event.handoff is not None
    assert event.handoff.carrier == "usps"
    assert event.handoff.tracking_number == "9200190164917312345671"
    assert event.handoff.evidence == "misc_info.local_number"


def test_track17_handoff_to_an_unknown_courier_and_to_itself() -> None:
    doc = track17_event()
    doc["data"]["track_info"]["misc_info"] = {"local_number": "RR 000 111 222 GB", "local_key": 99}
    (event,) = ok(TRACK17, doc)
    assert event.handoff is not None
    assert (event.handoff.carrier, event.handoff.tracking_number) == ("17track:99", "RR000111222GB")
    doc["data"]["track_info"]["misc_info"] = {"local_number": "lx123456785cn", "local_key": 3011}
    (event,) = ok(TRACK17, doc)
    assert event.handoff is None


def test_track17_latest_event_when_no_provider_lists_events() -> None:
    doc = track17_event()
    info = doc["data"]["track_info"]
    info["latest_event"] = info["tracking"]["providers"][0]["events"][0]
    info["tracking"]["providers"][0]["events"] = []
    (event,) = ok(TRACK17, doc)
    assert event.carrier_code == "3011"  # data.carrier


def test_track17_stopped_not_found_and_other_events() -> None:
    stopped = parse(TRACK17, load("track17", "stopped.json"))
    assert stopped.events == [] and stopped.errors == []
    missing = parse(TRACK17, load("track17", "not_found.json"))
    assert missing.events == []
    assert [(e.tracking_number, e.code) for e in missing.errors] == [
        ("YT2503100000001", "not_found")
    ]
    other = parse(TRACK17, {"event": "TRACKING_ARCHIVED", "data": {"number": "X1"}})
    assert [e.code for e in other.errors] == ["unsupported_event"]


def test_track17_private_fields_never_reach_an_event(track17: list[TrackingEvent]) -> None:
    dumped = json.dumps([e.model_dump(mode="json") for e in track17])
    for private in ("Atlantic", "MARY ROE", "ORDER-10017", "-73.99", "800-275"):
        assert private not in dumped


# --- AfterShip --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aftership() -> list[TrackingEvent]:
    return ok(AFTERSHIP, load("aftership", "tracking_update_cn_gb.json"), raw_ref="raw:as")


def aftership_checkpoint(**fields: Any) -> dict[str, Any]:
    checkpoint: dict[str, Any] = {
        "slug": "usps",
        "checkpoint_time": "2025-02-11T08:14:00-05:00",
        "created_at": "2025-02-11T13:30:00+00:00",
        "message": "Processed",
        "city": "ATLANTA",
        "state": "GA",
        "zip": "30303",
        "country_iso3": "USA",
        "tag": "InTransit",
        "subtag": "InTransit_001",
        "raw_tag": "XX",
    }
    checkpoint.update(fields)
    return {
        "ts": 1739990000,
        "event": "tracking_update",
        "event_id": "9c1e7b3a-5d2f-4e8a-b6c0-1f3d5a7e9b2c",
        "msg": {
            "tracking_number": "9400111899223817012345",
            "slug": "usps",
            "checkpoints": [checkpoint],
        },
    }


def test_aftership_checkpoints_oldest_first_with_courier_codes(
    aftership: list[TrackingEvent],
) -> None:
    assert len(aftership) == 10
    assert [e.sequence for e in aftership] == list(range(10))
    assert [e.carrier_code for e in aftership] == [
        "yunexpress:InfoReceived_001",  # raw_tag is empty: the sub-tag stands in
        "yunexpress:PU",
        "yunexpress:EC1",
        "yunexpress:DEP",
        "yunexpress:ARR",
        "yunexpress:CH1",
        "yunexpress:CC",
        "royal-mail:EVAIE",
        "royal-mail:EVKOP",
        "royal-mail:EVKSP",
    ]
    assert {(e.carrier, e.tracking_number) for e in aftership} == {("aftership", "YT2503100000001")}


def test_aftership_status_substatus_and_module(aftership: list[TrackingEvent]) -> None:
    assert [(e.status, e.substatus, e.module) for e in aftership] == [
        (S.INFO_RECEIVED, None, Module.ORIGIN),
        (S.IN_TRANSIT, U.PICKED_UP, Module.ORIGIN),
        (S.IN_TRANSIT, U.EXPORT_CUSTOMS_PRESENTED, Module.INTERNATIONAL),
        (S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY, Module.INTERNATIONAL),  # departure scan + text
        (S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY, Module.INTERNATIONAL),
        (S.EXCEPTION, U.IMPORT_CUSTOMS_HELD, Module.INTERNATIONAL),
        (S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL),
        (S.IN_TRANSIT, U.ARRIVED_HUB, Module.DESTINATION),
        (S.OUT_FOR_DELIVERY, None, Module.DESTINATION),
        (S.DELIVERED, None, Module.DESTINATION),
    ]


def test_aftership_checkpoint_time_with_and_without_offset(aftership: list[TrackingEvent]) -> None:
    picked_up, export, held = aftership[1], aftership[2], aftership[5]
    assert (picked_up.occurred_at_local, picked_up.utc_offset) == ("2025-03-03T19:40:00", "+08:00")
    assert picked_up.occurred_at == utc(2025, 3, 3, 11, 40)
    assert picked_up.time_basis is TimeBasis.CARRIER_OFFSET
    assert export.utc_offset is None and export.time_basis is TimeBasis.LOCATION_TIMEZONE
    assert export.occurred_at == utc(2025, 3, 4, 1, 15)  # Shenzhen wall time, UTC+8
    assert held.occurred_at == utc(2025, 3, 7, 14, 5)  # London in March: GMT
    us = ok(AFTERSHIP, aftership_checkpoint(checkpoint_time="2025-02-13T10:02:00"))[0]
    assert us.occurred_at is None and us.time_basis is TimeBasis.UNKNOWN
    zulu = ok(AFTERSHIP, aftership_checkpoint(checkpoint_time="2025-02-13T10:02:00Z"))[0]
    assert zulu.occurred_at == utc(2025, 2, 13, 10, 2) and zulu.time_basis is TimeBasis.CARRIER_UTC


def test_aftership_created_at_is_never_the_event_time(aftership: list[TrackingEvent]) -> None:
    assert aftership[0].occurred_at == utc(2025, 3, 3, 2, 2)  # created_at says 02:30:11


def test_aftership_alpha3_countries_old_and_new_fields(aftership: list[TrackingEvent]) -> None:
    assert [e.location.country for e in aftership if e.location] == ["CN"] * 4 + ["GB"] * 6
    assert aftership[8].location is not None and aftership[8].location.postal_code == "M1"


def test_aftership_next_couriers_handoff_on_the_next_couriers_first_checkpoint(
    aftership: list[TrackingEvent],
) -> None:
    with_handoff = [e for e in aftership if e.handoff]
    assert [e.carrier_code for e in with_handoff] == ["royal-mail:EVAIE"]
    handoff = with_handoff[0].handoff
    assert handoff is not None
    assert (handoff.carrier, handoff.tracking_number) == ("royal-mail", "QF123456785GB")
    assert handoff.evidence == "next_couriers"


@pytest.mark.parametrize(
    ("slug", "carrier"),
    [
        ("royal-mail", "royal-mail"),
        ("la-poste-colissimo", "la-poste"),  # AfterShip's slug differs from our id
        ("evri", "aftership:evri"),  # not a Throughline carrier: kept, namespaced
    ],
)
def test_aftership_next_courier_ids(slug: str, carrier: str) -> None:
    doc = aftership_checkpoint()
    doc["msg"]["next_couriers"] = [{"slug": slug, "tracking_number": "H01ABC0012345678"}]
    (event,) = ok(AFTERSHIP, doc)
    assert event.handoff is not None
    assert (event.handoff.carrier, event.handoff.tracking_number) == (carrier, "H01ABC0012345678")


def test_aftership_returned_journey() -> None:
    events = ok(AFTERSHIP, load("aftership", "tracking_update_returned_us.json"))
    assert [(e.status, e.substatus) for e in events] == [
        (S.IN_TRANSIT, U.PICKED_UP),
        (S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE),
        (S.AVAILABLE_FOR_PICKUP, None),
        (S.EXCEPTION, U.RETURNING),
        (S.RETURNED, None),
    ]
    assert all(e.handoff is None for e in events)  # next_couriers is empty
    assert events[0].location is not None and events[0].location.country == "US"  # country_region


@pytest.mark.parametrize("subtag", sorted(SUBTAGS))
def test_aftership_subtag_table(subtag: str) -> None:
    status, substatus = SUBTAGS[subtag]
    doc = aftership_checkpoint(tag=subtag.partition("_")[0], subtag=subtag, message="x")
    (event,) = ok(AFTERSHIP, doc)
    assert (event.status, event.substatus) == (status, substatus)


def test_aftership_other_event_codes_carry_the_same_tracking() -> None:
    doc = aftership_checkpoint()
    doc["event"] = "edd_revise"
    assert len(ok(AFTERSHIP, doc)) == 1


def test_aftership_broken_checkpoint_is_reported_and_the_rest_kept() -> None:
    doc = aftership_checkpoint()
    good = doc["msg"]["checkpoints"][0]
    doc["msg"]["checkpoints"] = [good, {**good, "checkpoint_time": None}, "junk"]
    result = parse(AFTERSHIP, doc)
    assert len(result.events) == 1
    assert [(e.code, e.message.split(":")[0]) for e in result.errors] == [
        ("malformed", "checkpoints[1]"),
        ("malformed", "checkpoints[2]"),
    ]


def test_aftership_private_fields_never_reach_an_event(aftership: list[TrackingEvent]) -> None:
    dumped = json.dumps([e.model_dump(mode="json") for e in aftership])
    for private in (
        "Jane",
        "Smith",
        "SMITH",
        "jane.smith",
        "+447700900123",
        "Rose Street",
        "ORDER-10017",
    ):
        assert private not in dumped
    assert aftership[9].description == "Delivered. Signed for by: [redacted]"


# --- EasyPost ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def easypost() -> list[TrackingEvent]:
    return ok(EASYPOST, load("easypost", "tracker_updated_delivered.json"))


def easypost_detail(**fields: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "object": "TrackingDetail",
        "message": "Update",
        "status": "in_transit",
        "status_detail": "status_update",
        "datetime": "2025-03-09T21:18:00Z",
        "source": "USPS",
        "carrier_code": "10",
        "tracking_location": {"city": "CHARLESTON", "state": "SC", "country": "US", "zip": None},
    }
    detail.update(fields)
    tracker = {
        "object": "Tracker",
        "tracking_code": "EZ4000000004",
        "carrier": "USPS",
        "tracking_details": [detail],
    }
    return {"object": "Event", "description": "tracker.updated", "result": tracker}


def test_easypost_details_oldest_first_in_utc(easypost: list[TrackingEvent]) -> None:
    assert len(easypost) == 7
    assert [e.sequence for e in easypost] == list(range(7))
    assert {e.time_basis for e in easypost} == {TimeBasis.CARRIER_UTC}
    assert easypost[6].occurred_at == utc(2025, 3, 10, 15, 45)
    assert (
        easypost[6].occurred_at_local == "2025-03-10T15:45:00"
        and easypost[6].utc_offset == "+00:00"
    )
    assert {(e.carrier, e.tracking_number) for e in easypost} == {
        ("easypost", "9400111899223817012345")
    }


def test_easypost_status_then_detail(easypost: list[TrackingEvent]) -> None:
    assert [(e.status, e.substatus) for e in easypost] == [
        (S.INFO_RECEIVED, None),
        (S.IN_TRANSIT, U.PICKED_UP),
        (S.IN_TRANSIT, U.DEPARTED_HUB),
        (S.IN_TRANSIT, None),
        (S.IN_TRANSIT, U.ARRIVED_HUB),
        (S.OUT_FOR_DELIVERY, None),
        (S.DELIVERED, None),  # status_detail arrived_at_destination does not demote it
    ]
    assert [e.carrier_code for e in easypost][:4] == [
        "USPS:status_update",  # empty carrier_code
        "USPS:OA",
        "USPS:EF",
        "USPS:status_update",  # null carrier_code
    ]


def test_easypost_empty_location_is_none(easypost: list[TrackingEvent]) -> None:
    assert easypost[0].location is None and easypost[3].location is None
    location = easypost[1].location
    assert location is not None
    assert (location.city, location.region, location.postal_code, location.country) == (
        "HOUSTON",
        "TX",
        "77001",
        "US",
    )


def test_easypost_signer_redacted(easypost: list[TrackingEvent]) -> None:
    assert easypost[6].description == "Delivered, Left with Individual - [redacted]"
    assert "JOHN DOE" not in json.dumps([e.model_dump(mode="json") for e in easypost])


def test_easypost_return_to_sender_and_alternate_identifier() -> None:
    events = ok(EASYPOST, load("easypost", "tracker_created_return_to_sender.json"))
    assert [(e.status, e.substatus) for e in events] == [
        (S.IN_TRANSIT, U.PICKED_UP),
        (S.EXCEPTION, U.ADDRESS_ISSUE),
        (S.EXCEPTION, U.RETURNING),
        (S.RETURNED, None),  # return_to_sender, and the text says it got there
    ]
    assert [e.handoff for e in events[:3]] == [None, None, None]
    handoff = events[3].handoff
    assert handoff is not None
    assert (handoff.carrier, handoff.tracking_number) == (None, "9261299998820001234567")
    assert handoff.evidence == "carrier_detail.alternate_identifier"
    assert handoff.confidence == 0.6
    assert events[0].carrier_code == "FedExSmartPost:PU"


@pytest.mark.parametrize("detail", sorted(STATUS_DETAILS))
def test_easypost_status_detail_table(detail: str) -> None:
    implied, substatus = STATUS_DETAILS[detail]
    (event,) = ok(EASYPOST, easypost_detail(status="unknown", status_detail=detail, message="x"))
    assert event.status is (implied or S.IN_TRANSIT)
    assert event.substatus is substatus


def test_easypost_other_events_are_not_unreadable() -> None:
    result = parse(EASYPOST, load("easypost", "batch_updated.json"))
    assert result.events == []
    assert [e.code for e in result.errors] == ["unsupported_event"]
    no_tracker = parse(
        EASYPOST, {"object": "Event", "description": "tracker.updated", "result": {}}
    )
    assert [e.code for e in no_tracker.errors] == ["malformed"]


# --- all three --------------------------------------------------------------------------------

ALL = [
    (TRACK17, "track17", "updated_cn_us_two_providers.json"),
    (AFTERSHIP, "aftership", "tracking_update_cn_gb.json"),
    (AFTERSHIP, "aftership", "tracking_update_returned_us.json"),
    (EASYPOST, "easypost", "tracker_updated_delivered.json"),
    (EASYPOST, "easypost", "tracker_created_return_to_sender.json"),
]


@pytest.mark.parametrize(("adapter", "folder", "name"), ALL)
def test_event_ids_are_deterministic_and_unique(adapter: Adapter, folder: str, name: str) -> None:
    doc = load(folder, name)
    first, again = ok(adapter, doc, raw_ref="a"), ok(adapter, doc, raw_ref="b")
    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert len({e.event_id for e in first}) == len(first)


@pytest.mark.parametrize("adapter", [TRACK17, AFTERSHIP, EASYPOST], ids=lambda a: a.carrier)
def test_samples_parse(adapter: Adapter) -> None:
    events = ok(adapter, sample_payload(adapter.carrier, "AB123456785CN"))
    assert len(events) == 3 and {e.tracking_number for e in events} == {"AB123456785CN"}


@pytest.mark.parametrize("adapter", [TRACK17, AFTERSHIP, EASYPOST], ids=lambda a: a.carrier)
@pytest.mark.parametrize(
    "payload",
    [b"", b"null", b"[]", b"{}", b"not json", b"\xff\xfe", b'{"data": 1}', b"[" * 100_000],
)
def test_unreadable_bodies_are_malformed(adapter: Adapter, payload: bytes) -> None:
    result = adapter.parse(payload)
    assert result.events == []
    assert [e.code for e in result.errors] == ["malformed"]
    assert not result.errors[0].message.startswith("unexpected payload")


# --- never raises -----------------------------------------------------------------------------

BASE = [(adapter, load(folder, name)) for adapter, folder, name in ALL]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        children: Any = node.items()
    elif isinstance(node, list):
        children = enumerate(node)
    else:
        children = ()
    for key, child in children:
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
def mutated(draw: st.DrawFn) -> tuple[Adapter, bytes]:
    adapter, base = draw(st.sampled_from(BASE))
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 5))):
        path = draw(st.sampled_from(_paths(doc)))
        doc = _mutate(doc, path, draw(st.booleans()), draw(JSON_VALUES))
    return adapter, json.dumps(doc).encode()


def _assert_well_formed(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    # every failure is reported by a specific check, not by the catch-all at the boundary
    assert not [e for e in result.errors if e.message.startswith("unexpected payload")]
    for event in result.events:
        TrackingEvent.model_validate_json(event.model_dump_json())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated())
def test_never_raises_on_mutated_payloads(case: tuple[Adapter, bytes]) -> None:
    adapter, payload = case
    _assert_well_formed(adapter.parse(payload))


@settings(max_examples=150, deadline=None)
@given(
    adapter=st.sampled_from([TRACK17, AFTERSHIP, EASYPOST]),
    payload=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
)
def test_never_raises_on_random_bytes(adapter: Adapter, payload: bytes) -> None:
    _assert_well_formed(adapter.parse(payload))

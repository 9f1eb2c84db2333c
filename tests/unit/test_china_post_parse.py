"""ChinaPostAdapter against real-format ePacket partner API answers (contracts §5.3)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.carriers.adapters.china_post import ChinaPostAdapter
from shared.taxonomy import Module, Status, Substatus, TimeBasis
from tests.unit.postal_support import (
    assert_well_formed,
    corrupted_bytes,
    dumped,
    load,
    spliced_xml,
)

ADAPTER = ChinaPostAdapter()
NUMBER = "LX123456785CN"
S, U, M = Status, Substatus, Module


def parse(name: str, **kwargs: Any) -> Any:
    return ADAPTER.parse(load("china_post", name), **{"requested": NUMBER, **kwargs})


@pytest.fixture(scope="module")
def english() -> list[Any]:
    result = parse("epacket_en.xml")
    assert result.errors == []
    return list(result.events)


@pytest.fixture(scope="module")
def chinese() -> list[Any]:
    result = parse("epacket_cn.xml")
    assert result.errors == []
    return list(result.events)


def test_no_number_in_body_so_the_asked_one_is_used(english: list[Any]) -> None:
    assert {e.tracking_number for e in english} == {NUMBER}
    lowered = ADAPTER.parse(load("china_post", "epacket_en.xml"), requested=" lx123456785cn ")
    assert {e.tracking_number for e in lowered.events} == {NUMBER}
    (error,) = ADAPTER.parse(load("china_post", "epacket_en.xml")).errors
    assert error.code == "malformed"


def test_english_remarks_map_to_upu_steps(english: list[Any]) -> None:
    assert [(e.status, e.substatus, e.module) for e in english] == [
        (S.IN_TRANSIT, U.PICKED_UP, M.ORIGIN),  # Posting
        (S.IN_TRANSIT, U.ARRIVED_HUB, M.ORIGIN),  # Arrival at Sorting Center (origin side)
        (S.IN_TRANSIT, U.DEPARTED_HUB, M.ORIGIN),
        (S.IN_TRANSIT, U.EXPORT_CUSTOMS_PRESENTED, M.INTERNATIONAL),
        (S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY, M.INTERNATIONAL),
        (S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY, M.INTERNATIONAL),
        (S.DELIVERED, None, M.DESTINATION),
    ]
    assert all(e.carrier_code is None for e in english)  # the feed has no codes


def test_duplicate_traces_are_dropped(english: list[Any]) -> None:
    assert len(english) == 7  # eight traces, one repeated
    assert [e.sequence for e in english] == list(range(7))
    assert len({e.event_id for e in english}) == 7


def test_beijing_wall_time_in_china(english: list[Any]) -> None:
    posting = english[0]
    assert posting.occurred_at_local == "2025-03-10T09:12:00"
    assert posting.utc_offset is None
    assert posting.occurred_at == datetime(2025, 3, 10, 1, 12, tzinfo=UTC)
    assert posting.time_basis is TimeBasis.LOCATION_TIMEZONE
    assert posting.location is not None and posting.location.country == "CN"  # pinyin + office


def test_plus_eight_on_a_foreign_office_is_not_trusted(english: list[Any]) -> None:
    arrival = english[5]
    assert arrival.location is not None and arrival.location.country == "US"  # IMPC USJFKA
    assert arrival.utc_offset == "+08:00"  # kept as written
    assert arrival.occurred_at is None and arrival.time_basis is TimeBasis.UNKNOWN


def test_foreign_address_without_offset_has_no_beijing_instant(english: list[Any]) -> None:
    delivered = english[-1]
    assert delivered.location is not None and delivered.location.country == "US"
    assert delivered.occurred_at is None and delivered.time_basis is TimeBasis.UNKNOWN
    assert delivered.occurred_at_local == "2025-03-18T14:22:00"


def test_arrival_at_foreign_inward_office_hands_over(english: list[Any]) -> None:
    (handoff,) = [e.handoff for e in english if e.handoff is not None]
    assert (handoff.carrier, handoff.tracking_number, handoff.evidence) == (
        "usps",
        NUMBER,
        "acceptAddress",
    )


def test_chinese_remarks(chinese: list[Any]) -> None:
    assert [(e.status, e.substatus) for e in chinese] == [
        (S.IN_TRANSIT, U.PICKED_UP),  # 已收寄
        (S.IN_TRANSIT, U.DEPARTED_HUB),  # 离开苏州市 发往纽约肯尼迪机场（经转）
        (S.IN_TRANSIT, U.EXPORT_CUSTOMS_RELEASED),  # 出口海关放行
        (S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY),  # 已交航空公司运输
        (S.IN_TRANSIT, U.ARRIVED_HUB),  # 到达投递局
        (S.FAILED_ATTEMPT, None),  # 未妥投 (not "妥投")
        (S.DELIVERED, None),  # 妥投
    ]
    assert chinese[4].module is M.DESTINATION
    assert chinese[0].location is not None and chinese[0].location.country == "CN"


def test_upu_style_variant_with_codes_and_impc() -> None:
    result = parse("epacket_upu_codes.xml")
    assert result.errors == []
    events = result.events
    assert [e.carrier_code for e in events] == ["EMA", "EMC", "EMD", "EME"]
    assert (events[3].status, events[3].substatus) == (S.EXCEPTION, U.IMPORT_CUSTOMS_HELD)
    held = events[3]
    assert held.location is not None and held.location.country == "GB"
    assert held.occurred_at == datetime(2025, 3, 13, 15, 30, tzinfo=UTC)  # London, GMT
    assert events[2].handoff is not None and events[2].handoff.carrier == "royal-mail"


def test_no_personal_data(english: list[Any], chinese: list[Any]) -> None:
    for name in ("epacket_en.xml", "epacket_cn.xml"):
        text = dumped(parse(name))
        for secret in ("jessica", "receiverton", "张小明"):
            assert secret not in text
    assert "[redacted]" in english[-1].description
    assert chinese[5].description == "未妥投 收件人不在"  # "recipient absent" is not a name


def test_event_ids_are_deterministic(english: list[Any]) -> None:
    assert [e.event_id for e in parse("epacket_en.xml").events] == [e.event_id for e in english]


# --- errors -------------------------------------------------------------------------------------


def test_literal_null_inside_200_is_not_found() -> None:
    result = parse("not_found_null.json")
    assert result.events == []
    (error,) = result.errors
    assert (error.tracking_number, error.code) == (NUMBER, "not_found")


def test_empty_traces_is_not_found() -> None:
    (error,) = ADAPTER.parse(b"<traces/>", requested=NUMBER).errors
    assert error.code == "not_found"


def test_json_error_object_is_a_carrier_error() -> None:
    body = b'{"code":"401","msg":"authenticate failed"}'
    (error,) = ADAPTER.parse(body, requested=NUMBER, http_status=401).errors
    assert error.code == "carrier_error" and "authenticate failed" in error.message


def test_xml_bomb_is_refused_quickly() -> None:
    started = time.monotonic()
    (error,) = parse("bomb.xml").errors
    assert error.code == "malformed" and "refused" in error.message
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<html><body>502</body></html>", "malformed"),
        (b"<traces><trace>", "malformed"),
        (b"<traces><trace><remark>Posting</remark></trace></traces>", None),
    ],
)
def test_unexpected_shapes(body: bytes, code: str | None) -> None:
    result = ADAPTER.parse(body, requested=NUMBER)
    assert result.events == []
    (error,) = result.errors
    assert error.code == (code or "malformed")


# --- never raises -------------------------------------------------------------------------------

PAYLOADS = [
    load("china_post", n) for n in ("epacket_en.xml", "epacket_cn.xml", "epacket_upu_codes.xml")
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=spliced_xml(PAYLOADS), http_status=st.sampled_from([200, 200, 401, 500]))
def test_never_raises_on_spliced_xml(payload: bytes, http_status: int) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER, http_status=http_status))


@settings(max_examples=200, deadline=None)
@given(payload=st.one_of(st.binary(max_size=200), corrupted_bytes(PAYLOADS)))
def test_never_raises_on_random_bytes(payload: bytes) -> None:
    assert_well_formed(ADAPTER.parse(payload, requested=NUMBER))

"""The postal adapters' shared pieces: timestamp spellings, places, redaction, order, merging."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.carriers.adapters.base import ParseResult
from services.carriers.adapters.postal import (
    Draft,
    Redactor,
    Route,
    country_code,
    finish,
    impc_country,
    load_xml,
    make_location,
    merge,
    s10_origin,
    split_local,
)
from shared.errors import InvalidInput
from shared.taxonomy import Module, Source, Status, Substatus, TimeBasis
from shared.timeparse import ResolvedTime, resolve


@pytest.mark.parametrize(
    ("value", "wall", "offset"),
    [
        ("2024-10-07T10:46:14+0200", datetime(2024, 10, 7, 10, 46, 14), "+0200"),
        ("2026-04-17T23:43:17.6571145", datetime(2026, 4, 17, 23, 43, 17, 657114), None),
        ("2025-03-10 09:12:00", datetime(2025, 3, 10, 9, 12), None),
        ("2025-03-10T09:12:00Z", datetime(2025, 3, 10, 9, 12), "Z"),
        ("20250314 170500", datetime(2025, 3, 14, 17, 5), None),
        ("202503141705", datetime(2025, 3, 14, 17, 5), None),
        ("20250314170512", datetime(2025, 3, 14, 17, 5, 12), None),
        ("11.03.2025 19:30", datetime(2025, 3, 11, 19, 30), None),
    ],
)
def test_timestamp_spellings(value: str, wall: datetime, offset: str | None) -> None:
    assert split_local(value) == (wall, offset)


@pytest.mark.parametrize("value", ["yesterday", "2025-13-40 10:00", "32.01.2025 10:00", ""])
def test_unreadable_timestamps(value: str) -> None:
    with pytest.raises((InvalidInput, ValueError)):
        split_local(value)


def test_places() -> None:
    assert country_code("CHINA") == "CN" and country_code("GBR") == "GB"
    assert country_code("us") == "US" and country_code("Narnia") is None
    assert country_code(42) is None
    assert impc_country("USJFKA") == "US" and impc_country("51800000") is None
    assert s10_origin("LX123456785CN") == "CN" and s10_origin("LX123456780CN") is None


def test_redactor() -> None:
    redact = Redactor(["Jessica Receiverton", "", "J"])
    assert redact("Delivered to JESSICA RECEIVERTON at home") == "Delivered to [redacted] at home"
    assert redact("Delivered, signed for by J. Smith") == "Delivered, signed for by [redacted]"
    assert redact("Livré. Signé par : Jean Dupont") == "Livré. Signé par : [redacted]"
    assert redact("妥投，签收人：张小明") == "妥投，签收人：[redacted]"
    assert redact("未妥投 收件人不在") == "未妥投 收件人不在"
    assert redact("Shipping information received by Australia Post") == (
        "Shipping information received by Australia Post"
    )


def test_entity_declarations_are_refused() -> None:
    xxe = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    with pytest.raises(InvalidInput, match="refused"):
        load_xml(xxe)


def draft(position: int, when: datetime | None, code: str, country: str | None = None) -> Draft:
    time = (
        resolve(when.replace(tzinfo=None), "Z")
        if when
        else ResolvedTime("2025-01-01T00:00:00", None, None, TimeBasis.UNKNOWN)
    )
    return Draft(position, f"t{position}", time, Status.IN_TRANSIT, None, None, code, code,
                 make_location(country=country))  # fmt: skip


def test_order_by_instant_with_unknown_instants_kept_near_their_neighbours() -> None:
    drafts = [  # newest first, one out of place, one without an instant
        draft(0, datetime(2025, 1, 5, tzinfo=UTC), "E"),
        draft(1, None, "D"),
        draft(2, datetime(2025, 1, 3, tzinfo=UTC), "C"),
        draft(3, datetime(2025, 1, 1, tzinfo=UTC), "A"),
        draft(4, datetime(2025, 1, 2, tzinfo=UTC), "B"),
    ]
    result = finish("x", "N1", drafts, raw_ref=None, source=Source.POLL, newest_first=True)
    assert [e.carrier_code for e in result.events] == ["A", "B", "C", "D", "E"]
    assert [e.sequence for e in result.events] == [0, 1, 2, 3, 4]


def test_modules_by_country_along_an_international_route() -> None:
    drafts = [
        draft(0, datetime(2025, 1, 1, tzinfo=UTC), "a", "CN"),
        draft(1, datetime(2025, 1, 2, tzinfo=UTC), "b", "HK"),
        draft(2, datetime(2025, 1, 3, tzinfo=UTC), "c", "CN"),
        draft(3, datetime(2025, 1, 4, tzinfo=UTC), "d", "US"),
        draft(4, datetime(2025, 1, 5, tzinfo=UTC), "e", "US"),
    ]
    events = finish("x", "N1", drafts, raw_ref=None, source=Source.POLL, newest_first=False,
                    route=Route("CN", "US")).events  # fmt: skip
    assert [e.module for e in events] == [
        Module.ORIGIN, Module.INTERNATIONAL, Module.INTERNATIONAL, Module.INTERNATIONAL,
        Module.DESTINATION,
    ]  # fmt: skip


def test_customs_in_the_origin_country_is_export() -> None:
    held = Draft(0, "t", resolve(datetime(2025, 1, 1), "Z"), Status.EXCEPTION,
                 Substatus.IMPORT_CUSTOMS_HELD, None, None, "Held by customs", None)  # fmt: skip
    held_cn = Draft(**{**held.__dict__, "location": make_location(country="CN")})
    (event,) = finish("x", "N1", [held_cn], raw_ref=None, source=Source.POLL,
                      newest_first=False, route=Route("CN", "US")).events  # fmt: skip
    assert event.substatus is Substatus.EXPORT_CUSTOMS_HELD
    (plain,) = finish("x", "N1", [held], raw_ref=None, source=Source.POLL,
                      newest_first=False).events  # fmt: skip
    assert plain.substatus is Substatus.IMPORT_CUSTOMS_HELD


def test_merge_pools_a_number_seen_in_two_parts() -> None:
    first = finish("x", "N1", [draft(0, datetime(2025, 1, 2, tzinfo=UTC), "B"),
                               draft(1, datetime(2025, 1, 1, tzinfo=UTC), "A")],
                   raw_ref=None, source=Source.POLL, newest_first=True)  # fmt: skip
    second = finish("x", "N1", [draft(0, datetime(2025, 1, 3, tzinfo=UTC), "C"),
                                draft(1, datetime(2025, 1, 1, tzinfo=UTC), "A")],
                    raw_ref=None, source=Source.POLL, newest_first=True)  # fmt: skip
    other = finish("x", "N2", [draft(0, datetime(2025, 1, 9, tzinfo=UTC), "Z")],
                   raw_ref=None, source=Source.POLL, newest_first=True)  # fmt: skip
    merged = merge([first, second, other, ParseResult()])
    n1 = [e for e in merged.events if e.tracking_number == "N1"]
    assert [(e.carrier_code, e.sequence) for e in n1] == [("A", 0), ("B", 1), ("C", 2)]
    assert [e.sequence for e in merged.events if e.tracking_number == "N2"] == [0]

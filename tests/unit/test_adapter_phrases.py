"""The vocabulary and time helpers the UPS, FedEx and cross-border adapters share."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.carriers.adapters.localtime import offset_plausible, wall_time, zone_offset
from services.carriers.adapters.phrases import (
    classify_text,
    country_in_text,
    handoff_in_text,
    redact,
)
from shared.errors import InvalidInput
from shared.taxonomy import Status, Substatus


@pytest.mark.parametrize(
    ("raw", "local", "offset"),
    [
        ("2025-03-10 09:15:00", "2025-03-10T09:15:00", None),
        ("2025-03-10T09:15:00+0800", "2025-03-10T09:15:00", "+0800"),
        ("2025-03-10T09:15:00.1234567", "2025-03-10T09:15:00.123456", None),
        ("2025/3/10 09:15:00", "2025-03-10T09:15:00", None),
        ("2025-03-10 12:05 AM", "2025-03-10T00:05:00", None),
        ("2025-03-10 12:05 p.m.", "2025-03-10T12:05:00", None),
        ("2025-03-10 9:05:30 pm", "2025-03-10T21:05:30", None),
    ],
)
def test_wall_time_spellings(raw: str, local: str, offset: str | None) -> None:
    naive, written = wall_time(raw)
    assert naive.isoformat(timespec="microseconds" if naive.microsecond else "seconds") == local
    assert written == offset


@pytest.mark.parametrize("raw", ["2025-13-10 09:15:00", "2025-03-10 13:05 PM", "yesterday", ""])
def test_unreadable_times(raw: str) -> None:
    with pytest.raises(InvalidInput):
        wall_time(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+8", "+8"),
        ("GMT+8", "+8"),
        ("UTC+08:00", "+08:00"),
        ("GMT", "Z"),
        ("", None),
        (None, None),
    ],
)
def test_zone_offset_spellings(raw: str | None, expected: str | None) -> None:
    assert zone_offset(raw) == expected


def test_offset_plausibility() -> None:
    march = datetime(2025, 3, 15, 13, 41)
    assert not offset_plausible("+8", "US", march)
    assert offset_plausible("-04:00", "US", march)
    assert offset_plausible("+01:00", "DE", march) and not offset_plausible("+02:00", "DE", march)
    assert offset_plausible("+02:00", "DE", march + timedelta(days=30))  # summer time
    assert offset_plausible("+05:00", None, march) and offset_plausible("Z", "US", march)


@pytest.mark.parametrize(
    ("place", "country"),
    [
        ("Los Angeles, CA, US", "US"),
        ("Baltimore, MD", "US"),
        ("MARYLAND, US", "US"),
        ("Leipzig, DE", "DE"),
        ("Dover, DE", None),  # Delaware or Germany: nobody can tell
        ("Toulouse, FR", "FR"),
        ("London Heathrow, GB", "GB"),
        ("深圳市", "CN"),
        ("香港", "HK"),
        ("United Kingdom", "GB"),
        ("somewhere", None),
    ],
)
def test_country_in_text(place: str, country: str | None) -> None:
    assert country_in_text(place) == country


@pytest.mark.parametrize(
    ("text", "status", "substatus"),
    [
        ("Delivered, In/At Mailbox", Status.DELIVERED, None),
        ("Not delivered: recipient not available", Status.FAILED_ATTEMPT, Substatus.RECIPIENT_UNAVAILABLE),
        ("Delivered to airline", None, Substatus.HANDED_OVER),
        ("Export customs clearance completed", None, Substatus.IMPORT_CUSTOMS_RELEASED),
        ("已签收", Status.DELIVERED, None),
        ("快件派送不成功", Status.FAILED_ATTEMPT, None),
        ("正在派送途中", Status.OUT_FOR_DELIVERY, None),
        ("Returned to sender", Status.RETURNED, None),
    ],
)  # fmt: skip
def test_classify_text(text: str, status: Status | None, substatus: Substatus | None) -> None:
    match = classify_text(text)
    assert match is not None and (match.status, match.substatus) == (status, substatus)


def test_handoff_in_text_needs_a_cue_and_a_foreign_number() -> None:
    found = handoff_in_text(
        "Handed over to USPS, tracking number: 9400111899562537866361", "4px", set()
    )
    assert found is not None and (found.carrier, found.tracking_number) == (
        "usps",
        "9400111899562537866361",
    )
    assert handoff_in_text("Tracking number: 9400111899562537866361", "4px", set()) is None
    own = {"4PX3002145678901CN"}
    assert handoff_in_text("Handed over, tracking number 4PX3002145678901CN", "4px", own) is None
    unnamed = handoff_in_text("转单号: 1234567890123", "sf-express", set())
    assert unnamed is not None and unnamed.carrier is None


def test_redact() -> None:
    assert redact("Delivered, signed by: Ann Lee.", []) == "Delivered, signed by: [redacted]."
    assert redact("签收人是：王小明", []) == "签收人是：[redacted]"
    assert redact("call +86 13912345678", []) == "call [redacted]"
    assert redact("Left for ann lee at door", ["Ann Lee"]) == "Left for [redacted] at door"

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import InvalidInput
from shared.taxonomy import TimeBasis
from shared.timeparse import location_zone, parse_offset, resolve, resolve_iso, split_iso


@pytest.mark.parametrize(
    "text,minutes",
    [("+8", 480), ("+0800", 480), ("+08:00", 480), ("-05:00", -300), ("Z", 0), ("+05:30", 330)],
)
def test_offsets_in_every_spelling(text: str, minutes: int) -> None:
    assert parse_offset(text) == timedelta(minutes=minutes)


def test_bad_offset_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        parse_offset("+25:00")


def test_local_time_in_single_zone_country_gets_an_instant() -> None:
    r = resolve_iso("2023-01-29T16:02:00", "DE")
    assert r.occurred_at_local == "2023-01-29T16:02:00"
    assert r.occurred_at == datetime(2023, 1, 29, 15, 2, tzinfo=UTC)
    assert r.time_basis is TimeBasis.LOCATION_TIMEZONE


def test_local_time_in_multi_zone_country_stays_unknown() -> None:
    r = resolve_iso("2023-01-29T16:02:00", "US")
    assert r.occurred_at is None and r.time_basis is TimeBasis.UNKNOWN
    assert r.occurred_at_local == "2023-01-29T16:02:00"


@pytest.mark.parametrize(
    ("country", "region", "utc_hour"),
    [("US", "GA", 21), ("US", "US-GA", 21), ("us", "ny", 21), ("US", "CA", 0), ("CA", "AB", 23),
     ("AU", "QLD", 6), ("US", "HI", 2)],
)  # fmt: skip
def test_single_zone_region_of_a_multi_zone_country_gets_an_instant(
    country: str, region: str, utc_hour: int
) -> None:
    r = resolve(datetime(2023, 1, 29, 16, 2), None, country, region=region)
    assert r.time_basis is TimeBasis.LOCATION_TIMEZONE
    assert r.occurred_at is not None and r.occurred_at.hour == utc_hour


@pytest.mark.parametrize(
    ("country", "region"),
    [("US", "TX"), ("US", "FL"), ("US", "IN"), ("US", "AZ"), ("CA", "ON"), ("AU", "NSW"),
     ("US", None), ("US", ""), ("US", "ZZ")],
)  # fmt: skip
def test_split_or_unknown_region_stays_unknown(country: str, region: str | None) -> None:
    assert location_zone(country, region) is None
    r = resolve(datetime(2023, 1, 29, 16, 2), None, country, region=region)
    assert r.occurred_at is None and r.time_basis is TimeBasis.UNKNOWN


def test_region_never_overrides_a_single_zone_country() -> None:
    assert location_zone("DE", "NY") == "Europe/Berlin"


def test_stated_offset_wins_and_is_kept() -> None:
    r = resolve_iso("2023-01-29T16:02:00+0800", "US")
    assert r.utc_offset == "+08:00"
    assert r.occurred_at == datetime(2023, 1, 29, 8, 2, tzinfo=UTC)
    assert r.time_basis is TimeBasis.CARRIER_OFFSET


def test_utc_z_is_carrier_utc() -> None:
    r = resolve_iso("2023-01-29T16:02:00Z")
    assert r.time_basis is TimeBasis.CARRIER_UTC and r.occurred_at == datetime(
        2023, 1, 29, 16, 2, tzinfo=UTC
    )


def test_untrusted_offset_is_kept_but_instant_comes_from_location() -> None:
    r = resolve(datetime(2024, 3, 1, 9, 0), "+11:00", "GB", trust_offset=False)
    assert r.utc_offset == "+11:00"
    assert r.occurred_at == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    assert r.time_basis is TimeBasis.LOCATION_TIMEZONE


def test_seven_digit_fraction() -> None:
    naive, tz = split_iso("2024-05-01T10:11:12.1234567-04:00")
    assert naive.microsecond == 123456 and tz == "-04:00"


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-45", "", "12/03/2024 10:00"])
def test_unreadable_timestamps_are_invalid_input(bad: str) -> None:
    with pytest.raises((InvalidInput, ValueError)):
        resolve_iso(bad)

"""Carrier timestamps: wall times in every spelling carriers use, and offsets checked against
the place they are stamped on.

Carriers write local wall times without a zone, zones in a separate field ("+8", "GMT+8"), offsets
without a colon, 7-digit fractions and 12-hour clocks; and some stamp their own system's offset on
scans made elsewhere. These helpers read all of that into the inputs of ``shared.timeparse``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.errors import InvalidInput
from shared.timeparse import COUNTRY_ZONES, ResolvedTime, parse_offset, resolve, split_iso

# Offsets (hours) that can occur somewhere in a country with several zones, DST included.
MULTI_ZONE_OFFSETS: dict[str, tuple[float, float]] = {
    "US": (-10, -4),
    "CA": (-8, -2.5),
    "AU": (8, 11),
    "BR": (-5, -2),
    "MX": (-8, -5),
    "RU": (2, 12),
    "ID": (7, 9),
    "ES": (0, 2),
    "PT": (-1, 1),
}
_TWELVE_HOUR = re.compile(
    r"^(?P<date>\d{4}[-/]\d{1,2}[-/]\d{1,2})[T ]+(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?"
    r"\s*(?P<half>[AaPp])\.?\s*[Mm]\.?$"
)
_SLASHED = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})([T ].*)$")
_ZONE_PREFIX = re.compile(r"^(?:GMT|UTC)\s*", re.IGNORECASE)


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def wall_time(value: str) -> tuple[datetime, str | None]:
    """A carrier timestamp → (naive wall time, offset as written or None).

    Accepts ISO 8601 with ``T`` or a space, any fraction length, offsets with or without a colon,
    ``YYYY/MM/DD`` dates and 12-hour clocks ("2024-04-26 09:26 PM").
    """
    raw = value.strip()
    twelve = _TWELVE_HOUR.match(raw)
    if twelve:
        hour = int(twelve["h"])
        if not 1 <= hour <= 12:
            raise InvalidInput(f"unreadable 12-hour time {value!r}")
        hour = hour % 12 + (12 if twelve["half"] in "Pp" else 0)
        date = datetime.strptime(twelve["date"].replace("/", "-"), "%Y-%m-%d")
        clock = timedelta(hours=hour, minutes=int(twelve["m"]), seconds=int(twelve["s"] or 0))
        return date + clock, None
    slashed = _SLASHED.match(raw)
    if slashed:
        year, month, day, rest = slashed.groups()
        raw = f"{year}-{int(month):02d}-{int(day):02d}{rest}"
    try:
        return split_iso(raw)
    except ValueError as exc:  # a well-shaped but impossible date (month 13)
        raise InvalidInput(f"unreadable timestamp {value!r}: {exc}") from exc


def zone_offset(value: Any) -> str | None:
    """'+8', 'GMT+8', 'UTC+08:00', '+0800' → the offset text ``parse_offset`` reads; '' → None."""
    raw = _text(value)
    if not raw:
        return None
    stripped = _ZONE_PREFIX.sub("", raw)
    if not stripped:
        return "Z"
    parse_offset(stripped)  # InvalidInput when unreadable
    return stripped


def resolve_time(
    local: datetime,
    offset: str | None,
    country: str | None,
    *,
    trust_offset: bool = True,
    region: str | None = None,
) -> ResolvedTime:
    """``shared.timeparse.resolve``, refusing an offset that cannot occur in the event's country.

    Carriers stamp their own system's offset on foreign scans (Yanwen +08:00 on a US delivery): the
    offset is kept as written, the instant then comes from the place if its zone is unambiguous.
    """
    trusted = trust_offset and offset_plausible(offset, country, local)
    return resolve(local, offset, country, trust_offset=trusted, region=region)


def offset_plausible(offset: str | None, country: str | None, local: datetime) -> bool:
    delta = parse_offset(offset) if offset else None
    if delta is None or country is None or offset in ("Z", "z"):
        return True  # nothing to check, or a UTC statement rather than the place's offset
    hours = delta.total_seconds() / 3600
    if country in MULTI_ZONE_OFFSETS:
        low, high = MULTI_ZONE_OFFSETS[country]
        return low <= hours <= high
    zone = COUNTRY_ZONES.get(country)
    if zone is None:
        return True
    tz = ZoneInfo(zone)
    candidates = {local.replace(tzinfo=tz, fold=f).utcoffset() for f in (0, 1)}
    return delta in candidates

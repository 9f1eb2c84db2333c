"""Carrier timestamps → (local wall time, stated offset, UTC instant, time basis).

Never assume UTC: a value without an offset is a local wall-clock time, and its instant is derived
only when the location's country has one unambiguous time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from shared.errors import InvalidInput
from shared.taxonomy import TimeBasis

# Countries that keep a single time zone (DST rules included), so a local time there has one instant.
COUNTRY_ZONES: dict[str, str] = {
    "AE": "Asia/Dubai",
    "AT": "Europe/Vienna",
    "BE": "Europe/Brussels",
    "BG": "Europe/Sofia",
    "CH": "Europe/Zurich",
    "CN": "Asia/Shanghai",
    "CZ": "Europe/Prague",
    "DE": "Europe/Berlin",
    "DK": "Europe/Copenhagen",
    "EE": "Europe/Tallinn",
    "FI": "Europe/Helsinki",
    "FR": "Europe/Paris",
    "GB": "Europe/London",
    "GR": "Europe/Athens",
    "HK": "Asia/Hong_Kong",
    "HR": "Europe/Zagreb",
    "HU": "Europe/Budapest",
    "IE": "Europe/Dublin",
    "IL": "Asia/Jerusalem",
    "IN": "Asia/Kolkata",
    "IT": "Europe/Rome",
    "JP": "Asia/Tokyo",
    "KR": "Asia/Seoul",
    "LT": "Europe/Vilnius",
    "LU": "Europe/Luxembourg",
    "LV": "Europe/Riga",
    "MO": "Asia/Macau",
    "MY": "Asia/Kuala_Lumpur",
    "NL": "Europe/Amsterdam",
    "NO": "Europe/Oslo",
    "NZ": "Pacific/Auckland",
    "PH": "Asia/Manila",
    "PL": "Europe/Warsaw",
    "RO": "Europe/Bucharest",
    "SE": "Europe/Stockholm",
    "SG": "Asia/Singapore",
    "SI": "Europe/Ljubljana",
    "SK": "Europe/Bratislava",
    "TH": "Asia/Bangkok",
    "TR": "Europe/Istanbul",
    "TW": "Asia/Taipei",
    "VN": "Asia/Ho_Chi_Minh",
    "ZA": "Africa/Johannesburg",
}
# Spain (Canaries), Portugal (Azores) and the multi-zone countries (US, CA, AU, BR, MX, RU, ID)
# are left out on purpose: their country alone does not fix the zone.

_OFFSET_RE = re.compile(r"^(?P<sign>[+-])(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?$")
_ISO_RE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)"
    r"(?:\.(?P<frac>\d+))?(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?$"
)


@dataclass(frozen=True)
class ResolvedTime:
    occurred_at_local: str
    utc_offset: str | None
    occurred_at: datetime | None
    time_basis: TimeBasis


def parse_offset(value: str | None) -> timedelta | None:
    """'+8', '+0800', '+08:00', '-05:00', 'Z' → timedelta; None or blank → None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text in ("Z", "z", "UTC", "GMT"):
        return timedelta(0)
    match = _OFFSET_RE.match(text)
    if not match:
        raise InvalidInput(f"unreadable UTC offset {value!r}")
    delta = timedelta(hours=int(match["h"]), minutes=int(match["m"] or 0))
    if delta > timedelta(hours=14):
        raise InvalidInput(f"UTC offset out of range {value!r}")
    return -delta if match["sign"] == "-" else delta


def format_offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def local_iso(value: datetime) -> str:
    """ISO 8601 wall time without offset, seconds precision (microseconds only when present)."""
    return value.replace(tzinfo=None).isoformat(
        timespec="microseconds" if value.microsecond else "seconds"
    )


def split_iso(value: str) -> tuple[datetime, str | None]:
    """Parse ISO 8601 with or without an offset (7-digit fractions and '+0800' accepted).

    Returns the naive wall time and the offset text as written (or None).
    """
    match = _ISO_RE.match(value.strip())
    if not match:
        raise InvalidInput(f"unreadable timestamp {value!r}")
    frac = (match["frac"] or "")[:6].ljust(6, "0") if match["frac"] else "000000"
    time_part = match["time"] if match["time"].count(":") == 2 else match["time"] + ":00"
    naive = datetime.fromisoformat(f"{match['date']}T{time_part}.{frac}")
    return naive, match["tz"]


# Subdivisions of multi-zone countries that keep one zone throughout, by (country, region code).
# States, provinces and territories split between zones (Texas, Florida, Indiana, Ontario, NSW's
# Broken Hill, ...) are left out on purpose: their scans keep ``time_basis: unknown``.
_REGION_ZONE_GROUPS: dict[tuple[str, str], tuple[str, ...]] = {
    ("US", "America/New_York"): (
        "CT", "DC", "DE", "GA", "MA", "MD", "ME", "NC", "NH", "NJ", "NY", "OH", "PA", "RI", "SC",
        "VA", "VT", "WV",
    ),
    ("US", "America/Chicago"): ("AL", "AR", "IA", "IL", "LA", "MN", "MO", "MS", "OK", "WI"),
    ("US", "America/Denver"): ("CO", "MT", "NM", "UT", "WY"),
    ("US", "America/Los_Angeles"): ("CA", "WA"),
    ("US", "Pacific/Honolulu"): ("HI",),
    ("US", "America/Puerto_Rico"): ("PR", "VI"),
    ("CA", "America/Halifax"): ("NS", "PE"),
    ("CA", "America/Moncton"): ("NB",),
    ("CA", "America/Winnipeg"): ("MB",),
    ("CA", "America/Edmonton"): ("AB",),
    ("CA", "America/Whitehorse"): ("YT",),
    ("AU", "Australia/Sydney"): ("ACT",),
    ("AU", "Australia/Melbourne"): ("VIC",),
    ("AU", "Australia/Brisbane"): ("QLD",),
    ("AU", "Australia/Adelaide"): ("SA",),
    ("AU", "Australia/Perth"): ("WA",),
    ("AU", "Australia/Hobart"): ("TAS",),
    ("AU", "Australia/Darwin"): ("NT",),
}  # fmt: skip
REGION_ZONES: dict[tuple[str, str], str] = {
    (country, region): zone
    for (country, zone), regions in _REGION_ZONE_GROUPS.items()
    for region in regions
}


def location_zone(country: str | None, region: str | None = None) -> str | None:
    """The IANA zone of a place when it is unambiguous: the country's own, else its region's."""
    code = (country or "").strip().upper()
    zone = COUNTRY_ZONES.get(code)
    if zone is None and region:
        zone = REGION_ZONES.get((code, region.strip().upper().removeprefix(f"{code}-")))
    return zone


def resolve(
    local: datetime,
    offset: str | None = None,
    country: str | None = None,
    *,
    trust_offset: bool = True,
    region: str | None = None,
) -> ResolvedTime:
    """Keep the wall time; derive the instant from a stated offset, else from an unambiguous zone
    (the country's, or for a multi-zone country the ``region``'s: "GA", "US-GA", "QLD").

    ``trust_offset=False`` is for carriers known to stamp their system's offset on every event: the
    offset is kept as written but the instant comes from the location, if anywhere.
    """
    local = local.replace(tzinfo=None)
    wall = local_iso(local)
    delta = parse_offset(offset)
    stated = format_offset(delta) if delta is not None else None
    if delta is not None and trust_offset:
        basis = (
            TimeBasis.CARRIER_UTC
            if offset and offset.strip() in ("Z", "z")
            else TimeBasis.CARRIER_OFFSET
        )
        instant = local.replace(tzinfo=timezone(delta)).astimezone(UTC)
        return ResolvedTime(wall, stated, instant, basis)
    zone = location_zone(country, region)
    if zone is not None:
        instant = local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
        return ResolvedTime(wall, stated, instant, TimeBasis.LOCATION_TIMEZONE)
    return ResolvedTime(wall, stated, None, TimeBasis.UNKNOWN)


def resolve_iso(
    value: str, country: str | None = None, *, trust_offset: bool = True
) -> ResolvedTime:
    naive, tz = split_iso(value)
    return resolve(naive, tz, country, trust_offset=trust_offset)

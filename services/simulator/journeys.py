"""Scripted DHL journeys (pure data) and their rendering in the Unified API's own shape.

A journey is a list of steps, each an offset from the journey's start. A step's timestamp is the
start plus its offset, written as DHL writes event timestamps: the local wall time of the step's
place, WITHOUT an offset; the shipment's ``status.timestamp`` is the same instant in UTC with ``Z``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "JOURNEYS",
    "Journey",
    "Place",
    "Step",
    "local_timestamp",
    "render_shipment",
    "utc_timestamp",
    "valid_dhl_express_number",
    "is_valid_dhl_express_number",
    "visible_steps",
]


@dataclass(frozen=True)
class Place:
    country: str
    locality: str | None
    postal_code: str | None
    zone: str  # IANA zone of the place: the simulator's source of local wall times

    def address(self) -> dict[str, str]:
        fields = {
            "countryCode": self.country,
            "postalCode": self.postal_code,
            "addressLocality": self.locality,
        }
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class Step:
    offset: timedelta
    status_code: str  # pre-transit | transit | delivered | failure | unknown
    status: str
    description: str | None
    place: Place
    located: bool = True  # False: DHL sends the event without a `location`

    @property
    def location(self) -> dict[str, Any] | None:
        return {"address": self.place.address()} if self.located else None


@dataclass(frozen=True)
class Journey:
    name: str
    service: str
    product: str
    origin: Place
    destination: Place
    steps: tuple[Step, ...]
    references: dict[str, str] | list[dict[str, str]] | None = None

    @property
    def duration(self) -> timedelta:
        return self.steps[-1].offset


def _step(
    hours: float,
    code: str,
    status: str,
    description: str | None,
    place: Place,
    located: bool = True,
) -> Step:
    return Step(timedelta(hours=hours), code, status, description, place, located)


SHENZHEN = Place("CN", "SHENZHEN - CHINA MAINLAND", "518000", "Asia/Shanghai")
SHANGHAI = Place("CN", "SHANGHAI - CHINA MAINLAND", "200000", "Asia/Shanghai")
LEIPZIG = Place("DE", "LEIPZIG - GERMANY", "04435", "Europe/Berlin")
BERLIN = Place("DE", "BERLIN - GERMANY", "10115", "Europe/Berlin")
FRANKFURT = Place("DE", "FRANKFURT - GERMANY", "60549", "Europe/Berlin")
CHICAGO = Place("US", "CHICAGO, IL, US", "60666", "America/Chicago")
NEW_YORK = Place("US", "NEW YORK CITY GATEWAY - USA", "11430", "America/New_York")
CINCINNATI = Place("US", "CINCINNATI HUB - USA", "41048", "America/New_York")
HEATHROW = Place("GB", "HEATHROW, GB", "HEATHROW", "Europe/London")
LONDON = Place("GB", "LONDON - UK", "EC1A", "Europe/London")
EAST_MIDLANDS = Place("GB", "EAST MIDLANDS - UK", "DE74", "Europe/London")
COLOGNE = Place("DE", "COLOGNE - GERMANY", "50667", "Europe/Berlin")

EXPRESS_DOOR_TO_DOOR = Journey(
    name="dhl-express-door-to-door",
    service="express",
    product="EXPRESS WORLDWIDE",
    origin=SHENZHEN,
    destination=BERLIN,
    references={"number": "ORDER-10017", "type": "customer-reference"},
    steps=(
        _step(0, "pre-transit", "Shipment information received", None, SHENZHEN),
        _step(3, "transit", "Shipment picked up", None, SHENZHEN),
        _step(8, "transit", "Processed at SHENZHEN - CHINA MAINLAND", None, SHENZHEN),
        _step(
            14,
            "transit",
            "Customs status updated",
            "Export clearance processing complete",
            SHANGHAI,
        ),
        _step(18, "transit", "Departed Facility in SHANGHAI - CHINA MAINLAND", None, SHANGHAI),
        _step(34, "transit", "Arrived at DHL Sort Facility LEIPZIG - GERMANY", None, LEIPZIG),
        _step(38, "transit", "Customs status updated", "Shipment is in customs clearance", LEIPZIG),
        _step(44, "transit", "Clearance processing complete at LEIPZIG - GERMANY", None, LEIPZIG),
        _step(50, "transit", "Arrived at Delivery Facility in BERLIN - GERMANY", None, BERLIN),
        _step(56, "transit", "Shipment is out with courier for delivery", None, BERLIN),
        _step(60, "delivered", "Delivered", "Delivered - Signed for by: M. MUSTERMANN", BERLIN),
    ),
)

ECOMMERCE_UNKNOWN_SCANS = Journey(
    name="dhl-ecommerce-unknown-scans",
    service="ecommerce",
    product="DHL Parcel International Direct",
    origin=CHICAGO,
    destination=LONDON,
    references=[
        {"number": "GM605112270084510000", "type": "ecommerce"},
        {"number": "ORDER-20031", "type": "customer-reference"},
    ],
    steps=(
        _step(
            0,
            "pre-transit",
            "SHIPMENT DATA RECEIVED",
            "Shipment data received",
            CHICAGO,
            located=False,
        ),
        _step(5, "transit", "PICKED UP", "Picked up by DHL eCommerce", CHICAGO),
        _step(9, "unknown", "CLOSE BAG", None, CHICAGO),
        _step(12, "pre-transit", "SHIPMENT DATA RECEIVED", "Shipment data received", CHICAGO),
        _step(
            20, "transit", "DEPARTED FROM ORIGIN COUNTRY", "Departed from origin country", CHICAGO
        ),
        _step(
            36,
            "transit",
            "ARRIVED AT DESTINATION COUNTRY",
            "Arrived in the destination country",
            HEATHROW,
        ),
        _step(40, "transit", "CUSTOMS CLEARED", "Customs cleared", HEATHROW),
        _step(42, "unknown", "OPEN BAG", None, HEATHROW),
        _step(52, "transit", "OUT FOR DELIVERY", "Out for delivery", LONDON),
        _step(57, "delivered", "DELIVERED", "Delivered", LONDON),
    ),
)

CUSTOMS_HOLD = Journey(
    name="dhl-customs-hold",
    service="express",
    product="EXPRESS WORLDWIDE",
    origin=NEW_YORK,
    destination=FRANKFURT,
    references={"number": "ORDER-30044", "type": "customer-reference"},
    steps=(
        _step(0, "pre-transit", "Shipment information received", None, NEW_YORK),
        _step(2, "transit", "Shipment picked up", None, NEW_YORK),
        _step(9, "transit", "Departed Facility in CINCINNATI HUB - USA", None, CINCINNATI),
        _step(20, "transit", "Arrived at DHL Sort Facility LEIPZIG - GERMANY", None, LEIPZIG),
        _step(22, "transit", "Customs status updated", "Shipment is in customs clearance", LEIPZIG),
        _step(
            26,
            "transit",
            "Clearance delay",
            "Shipment on hold: awaiting customs documents from the importer",
            LEIPZIG,
        ),
        _step(
            50,
            "transit",
            "Customs status updated",
            "Duties and taxes due from the receiver",
            LEIPZIG,
        ),
        _step(60, "transit", "Customs status updated", "Duties and taxes paid", LEIPZIG),
        _step(64, "transit", "Clearance processing complete at LEIPZIG - GERMANY", None, LEIPZIG),
        _step(
            70, "transit", "Arrived at Delivery Facility in FRANKFURT - GERMANY", None, FRANKFURT
        ),
        _step(74, "transit", "Shipment is out with courier for delivery", None, FRANKFURT),
        _step(78, "delivered", "Delivered", None, FRANKFURT),
    ),
)

FAILED_ATTEMPT = Journey(
    name="dhl-failed-attempt",
    service="express",
    product="EXPRESS WORLDWIDE",
    origin=LONDON,
    destination=COLOGNE,
    references={"number": "ORDER-40058", "type": "customer-reference"},
    steps=(
        _step(0, "pre-transit", "Shipment information received", None, LONDON),
        _step(2, "transit", "Shipment picked up", None, LONDON),
        _step(6, "transit", "Departed Facility in EAST MIDLANDS - UK", None, EAST_MIDLANDS),
        _step(12, "transit", "Arrived at DHL Sort Facility LEIPZIG - GERMANY", None, LEIPZIG),
        _step(15, "transit", "Clearance processing complete at LEIPZIG - GERMANY", None, LEIPZIG),
        _step(22, "transit", "Arrived at Delivery Facility in COLOGNE - GERMANY", None, COLOGNE),
        _step(25, "transit", "Shipment is out with courier for delivery", None, COLOGNE),
        _step(
            29,
            "failure",
            "Delivery attempted",
            "Recipient not home - a notification card was left",
            COLOGNE,
        ),
        _step(47, "transit", "Shipment is out with courier for delivery", None, COLOGNE),
        _step(50, "delivered", "Delivered", None, COLOGNE),
    ),
)

JOURNEYS: dict[str, Journey] = {
    j.name: j for j in (EXPRESS_DOOR_TO_DOOR, ECOMMERCE_UNKNOWN_SCANS, CUSTOMS_HOLD, FAILED_ATTEMPT)
}


def valid_dhl_express_number(seed: int) -> str:
    """A 10-digit DHL Express waybill number: 9 digits then their value mod 7 as check digit.

    Distinct seeds in [0, 10**9) give distinct numbers (7919 is coprime with 10**9).
    """
    body = f"{(seed * 7919 + 123_456_789) % 10**9:09d}"
    return body + str(int(body) % 7)


def is_valid_dhl_express_number(number: str) -> bool:
    return len(number) == 10 and number.isdigit() and int(number[:9]) % 7 == int(number[9])


def visible_steps(journey: Journey, elapsed: timedelta) -> list[Step]:
    """The steps that have happened after ``elapsed`` journey time, oldest first."""
    return [s for s in journey.steps if s.offset <= elapsed]


def local_timestamp(start: datetime, step: Step) -> str:
    local = (start + step.offset).astimezone(ZoneInfo(step.place.zone))
    return local.replace(tzinfo=None).isoformat(timespec="seconds")


def utc_timestamp(start: datetime, step: Step) -> str:
    return (start + step.offset).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_event(start: datetime, step: Step, *, utc: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = {
        "timestamp": utc_timestamp(start, step) if utc else local_timestamp(start, step)
    }
    if step.location is not None:
        event["location"] = step.location
    event["statusCode"] = step.status_code
    event["status"] = step.status
    if step.description is not None:
        event["description"] = step.description
    return event


def render_shipment(
    tracking_number: str, journey: Journey, start: datetime, elapsed: timedelta
) -> dict[str, Any] | None:
    """The shipment object as the Unified API returns it, or None before the first step."""
    steps = visible_steps(journey, elapsed)
    if not steps:
        return None
    events = [render_event(start, s) for s in reversed(steps)]  # DHL lists newest first
    return {
        "id": tracking_number,
        "service": journey.service,
        "origin": {"address": journey.origin.address()},
        "destination": {"address": journey.destination.address()},
        "status": render_event(start, steps[-1], utc=True),
        "details": _details(tracking_number, journey),
        "events": events,
    }


def _details(tracking_number: str, journey: Journey) -> dict[str, Any]:
    details: dict[str, Any] = {
        "carrier": {"@type": "Organization", "organizationName": "DHL"},
        "product": {"productName": journey.product},
        "totalNumberOfPieces": 1,
        "pieceIds": [f"JD01460000{tracking_number[-8:].rjust(8, '0')}"],
        "weight": {"value": 1.2, "unitText": "kg"},
    }
    if journey.references is not None:
        details["references"] = journey.references
    return details

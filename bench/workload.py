"""A deterministic, realistic stream of canonical tracking events for benchmarks and fault tests.

Shipments start over 30 days and follow cross-border journeys (origin scans, export customs,
linehaul, import customs, last mile) of 8 to 12 events, with a few failed attempts, exceptions and
returns. The stream is ordered by instant across all shipments, as carriers would report it, so one
consumer batch touches hundreds of shipments, each of which already has earlier events stored.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.bus import OutRecord
from shared.schema import Location, TrackingEvent, make_event_id
from shared.taxonomy import Module, Source, Status, Substatus, TimeBasis

T0 = datetime(2024, 3, 1, tzinfo=UTC)

Step = tuple[Status, Substatus | None, Module, str, str]

_ORIGIN: list[Step] = [
    (Status.INFO_RECEIVED, None, Module.ORIGIN, "PRE", "Shipment information received"),
    (Status.IN_TRANSIT, Substatus.PICKED_UP, Module.ORIGIN, "EMA", "Posting/collection"),
    (Status.IN_TRANSIT, Substatus.ARRIVED_HUB, Module.ORIGIN, "AHO", "Arrived at sorting centre"),
    (Status.IN_TRANSIT, Substatus.DEPARTED_HUB, Module.ORIGIN, "DHO", "Departed sorting centre"),
]
_EXPORT: list[Step] = [
    (
        Status.IN_TRANSIT,
        Substatus.EXPORT_CUSTOMS_PRESENTED,
        Module.INTERNATIONAL,
        "EXA",
        "Presented to export customs",
    ),
    (
        Status.IN_TRANSIT,
        Substatus.EXPORT_CUSTOMS_RELEASED,
        Module.INTERNATIONAL,
        "EXC",
        "Released by export customs",
    ),
    (
        Status.IN_TRANSIT,
        Substatus.DEPARTED_ORIGIN_COUNTRY,
        Module.INTERNATIONAL,
        "EMC",
        "Departed from outward office of exchange",
    ),
]
_IMPORT: list[Step] = [
    (
        Status.IN_TRANSIT,
        Substatus.ARRIVED_DESTINATION_COUNTRY,
        Module.INTERNATIONAL,
        "EMD",
        "Arrived at inward office of exchange",
    ),
    (
        Status.IN_TRANSIT,
        Substatus.IMPORT_CUSTOMS_PRESENTED,
        Module.INTERNATIONAL,
        "EDA",
        "Held at inward office of exchange",
    ),
    (
        Status.IN_TRANSIT,
        Substatus.IMPORT_CUSTOMS_RELEASED,
        Module.INTERNATIONAL,
        "EDC",
        "Released from import customs",
    ),
]
_LAST_MILE: list[Step] = [
    (
        Status.IN_TRANSIT,
        Substatus.HANDED_OVER,
        Module.DESTINATION,
        "EMF",
        "Arrived at delivery office",
    ),
    (Status.OUT_FOR_DELIVERY, None, Module.DESTINATION, "EDG", "Out for delivery"),
]
_ATTEMPT: Step = (
    Status.FAILED_ATTEMPT,
    Substatus.RECIPIENT_UNAVAILABLE,
    Module.DESTINATION,
    "EMH",
    "Delivery attempted, recipient not at home",
)
_DELIVERED: Step = (Status.DELIVERED, None, Module.DESTINATION, "EMI", "Delivered")
_HELD: Step = (
    Status.EXCEPTION,
    Substatus.IMPORT_CUSTOMS_HELD,
    Module.INTERNATIONAL,
    "EDE",
    "Held by import customs: documents required",
)
_RETURNED: Step = (
    Status.RETURNED,
    Substatus.RETURNING,
    Module.DESTINATION,
    "EMJ",
    "Returned to sender",
)

# (carrier, origin city, country, utc offset) and destinations.
_ORIGINS = [
    ("dhl", "Shenzhen", "CN", "+08:00"),
    ("china-post", "Guangzhou", "CN", "+08:00"),
    ("yanwen", "Yiwu", "CN", "+08:00"),
    ("dhl", "Leipzig", "DE", "+01:00"),
]
_DESTINATIONS = [
    ("New York", "US", "-05:00"),
    ("London", "GB", "+00:00"),
    ("Paris", "FR", "+01:00"),
    ("Sydney", "AU", "+11:00"),
    ("Toronto", "CA", "-05:00"),
]


@dataclass(frozen=True)
class Workload:
    events: list[TrackingEvent]  # in publishing order
    shipments: dict[tuple[str, str], list[TrackingEvent]]  # (carrier, number) -> its events

    def records(self) -> list[OutRecord]:
        return [
            OutRecord(f"{e.carrier}:{e.tracking_number}", e.model_dump_json().encode())
            for e in self.events
        ]


def generate(
    n_events: int, n_shipments: int | None = None, seed: int = 20240301, order: str = "time"
) -> Workload:
    """Exactly ``n_events`` events over about ``n_events / 10`` shipments; same seed, same stream.

    ``order="time"`` interleaves all shipments by instant (the realistic, harder case);
    ``order="shipment"`` publishes each shipment's events together, as one poll would return them.
    """
    rng = random.Random(seed)
    shipments: dict[tuple[str, str], list[TrackingEvent]] = {}
    total = 0
    target_shipments = n_shipments or max(1, n_events // 10)
    per_shipment = n_events / target_shipments
    i = 0
    while total < n_events:
        steps = _journey(rng, per_shipment)[: n_events - total]
        carrier, number, events = _shipment(rng, i, steps)
        shipments[(carrier, number)] = events
        total += len(events)
        i += 1
    ordered = [e for events in shipments.values() for e in events]
    if order == "time":
        ordered.sort(key=lambda e: (e.occurred_at or _local_instant(e), e.event_id.int))
    return Workload(ordered, shipments)


def _journey(rng: random.Random, mean: float) -> list[Step]:
    steps = list(_ORIGIN)
    if rng.random() < 0.3:  # not every carrier reports the sorting centre
        steps.remove(_ORIGIN[2])
    steps += _EXPORT if rng.random() < 0.7 else [_EXPORT[0], _EXPORT[2]]
    roll = rng.random()
    if roll < 0.03:
        return steps + [_IMPORT[0], _HELD]
    steps += _IMPORT if rng.random() < 0.6 else _IMPORT[:1] + _IMPORT[2:]
    steps += _LAST_MILE
    if roll < 0.04:
        return steps + [_ATTEMPT, _ATTEMPT, _RETURNED]
    if roll < 0.12:
        steps += [_ATTEMPT, _LAST_MILE[1]]
    steps.append(_DELIVERED)
    # Hold the mean near the requested events per shipment (10 by default): carriers skip scans.
    keep = max(3, round(mean) + rng.randint(-2, 2))
    while len(steps) > keep:
        steps.pop(rng.randrange(1, len(steps) - 1))
    return steps


def _shipment(
    rng: random.Random, i: int, steps: list[Step]
) -> tuple[str, str, list[TrackingEvent]]:
    carrier, city, country, offset = _ORIGINS[i % len(_ORIGINS)]
    dest_city, dest_country, dest_offset = _DESTINATIONS[rng.randrange(len(_DESTINATIONS))]
    number = _number(carrier, i)
    instant = T0 + timedelta(seconds=rng.randrange(30 * 86400))
    unknown_zone = rng.random() < 0.05  # some carriers give local time and nothing else
    events = []
    for seq, (status, substatus, module, code, text) in enumerate(steps):
        instant += timedelta(minutes=rng.randrange(30, 36 * 60))
        at_origin = module is Module.ORIGIN or code in ("EXA", "EXC", "EMC")
        place, cc, off = (
            (city, country, offset) if at_origin else (dest_city, dest_country, dest_offset)
        )
        local = (instant + _offset(off)).replace(tzinfo=None).isoformat()
        location = Location(
            city=place, country=cc, facility=f"{cc}{place[:3].upper()}1", text=f"{place}, {cc}"
        )
        events.append(
            TrackingEvent(
                event_id=make_event_id(carrier, number, code, local, location.text),
                carrier=carrier,
                tracking_number=number,
                occurred_at_local=local,
                utc_offset=None if unknown_zone else off,
                occurred_at=None if unknown_zone else instant,
                time_basis=TimeBasis.UNKNOWN if unknown_zone else TimeBasis.CARRIER_OFFSET,
                status=status,
                substatus=substatus,
                module=module,
                carrier_code=code,
                description=text,
                location=location,
                source=Source.POLL,
                raw_ref=f"raw-{i:08d}-{seq:02d}",
                sequence=seq,
            )
        )
    return carrier, number, events


def _number(carrier: str, i: int) -> str:
    if carrier == "dhl":
        return f"JJD{14600000000000 + i:017d}"
    serial = f"{10000000 + i:08d}"[-8:]
    return f"L{'XY'[i % 2]}{serial}{_s10_check(serial)}CN"


def _s10_check(serial: str) -> int:
    total = sum(int(d) * w for d, w in zip(serial, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = 11 - total % 11
    return {10: 0, 11: 5}.get(check, check)


def _offset(text: str) -> timedelta:
    sign = -1 if text[0] == "-" else 1
    hours, minutes = text[1:].split(":")
    return sign * timedelta(hours=int(hours), minutes=int(minutes))


def _local_instant(event: TrackingEvent) -> datetime:
    return datetime.fromisoformat(event.occurred_at_local or "1970-01-01T00:00:00").replace(
        tzinfo=UTC
    )

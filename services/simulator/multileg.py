"""Multi-carrier journeys: one parcel's scripts at several carriers, played on one accelerated clock.

An ``Itinerary`` names a journey and builds its ``Plan`` from the first leg's number: one ``Leg``
per carrier (the number that carrier answers with, its scans, aliases it also answers for, scans it
reports late) and any carrier outages along the way. Starting it installs one ``AcceleratedScript``
per leg into the sandboxes' shared ``ScriptState``.

Time works as for the DHL journeys (``RunningJourney``): journey time runs ``speed`` times faster
than real time from the real start, and timestamps are laid out so the journey ends at its real
start — journey time zero sits one journey length before it. Every revealed scan is therefore in
the past, and a restart with the same ``started_at`` reproduces the same timestamps (and so the
same event ids). Numbers of the other legs are derived from the first one, so they are reproduced
too.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.simulator.carriers import CarrierScript, Scan, ScriptState

__all__ = [
    "AcceleratedScript",
    "Itinerary",
    "Leg",
    "MultiLegJourneys",
    "PlannedOutage",
    "Plan",
    "RunningItinerary",
    "seed_of",
]

ZERO = timedelta(0)


@dataclass
class AcceleratedScript(CarrierScript):
    """A ``CarrierScript`` revealed by accelerated journey time rather than by its timestamps.

    ``started_at`` (the stamp origin) places the scans on the calendar; a scan at ``offset`` is
    revealed once ``(now - real_start) * speed`` reaches ``offset`` plus its reporting delay, and
    scans come out in the order the carrier reported them.
    """

    real_start: datetime = field(kw_only=True)
    speed: float = field(kw_only=True)
    late: dict[int, timedelta] = field(default_factory=dict, kw_only=True)  # scan index → delay

    def elapsed(self, now: datetime) -> timedelta:
        return (now - self.real_start) * self.speed

    def reported_at(self, index: int) -> timedelta:
        """Journey time at which the carrier reports scan ``index``."""
        return self.scans[index].offset + self.late.get(index, ZERO)

    def visible(self, now: datetime) -> list[tuple[Scan, datetime]]:
        elapsed = self.elapsed(now)
        due = [i for i in range(len(self.scans)) if self.reported_at(i) <= elapsed]
        due.sort(key=self.reported_at)
        return [(self.scans[i], self.scans[i].local_time(self.started_at)) for i in due]


@dataclass(frozen=True)
class Leg:
    carrier: str
    tracking_number: str  # the number the carrier answers with
    scans: tuple[Scan, ...]
    modules: tuple[str, ...]  # the logistics modules this leg covers (for the control API)
    aliases: tuple[str, ...] = ()  # numbers the carrier also answers for
    late: tuple[tuple[int, float], ...] = ()  # (scan index, hours reported after it happened)


@dataclass(frozen=True)
class PlannedOutage:
    """The carrier answers ``status`` to every request between these journey hours."""

    carrier: str
    start_h: float
    end_h: float
    status: int = 503


@dataclass(frozen=True)
class Plan:
    legs: tuple[Leg, ...]
    outages: tuple[PlannedOutage, ...] = ()

    @property
    def duration(self) -> timedelta:
        return max(s.offset for leg in self.legs for s in leg.scans)


@dataclass(frozen=True)
class Itinerary:
    name: str
    summary: str
    first_number: Callable[[int], str]  # a valid first-leg number from a random seed
    plan: Callable[[str, int], Plan]  # (first number, ``seed_of`` it) → the legs


def seed_of(number: str) -> int:
    """A stable seed from a number (the same first number always yields the same other legs)."""
    return int.from_bytes(hashlib.sha256(number.encode()).digest()[:6], "big")


@dataclass
class RunningItinerary:
    itinerary: Itinerary
    plan: Plan
    started_at: datetime
    speed: float
    scripts: list[tuple[Leg, AcceleratedScript]]

    @property
    def first_number(self) -> str:
        return self.plan.legs[0].tracking_number

    def legs(self) -> list[dict[str, Any]]:
        return [
            {"carrier": leg.carrier, "tracking_number": leg.tracking_number, "modules": leg.modules}
            for leg in self.plan.legs
        ]

    def describe(self, now: datetime) -> dict[str, Any]:
        legs = [
            {
                **entry,
                "events_visible": len(script.visible(now)),
                "events_total": len(script.scans),
            }
            for entry, (_, script) in zip(self.legs(), self.scripts, strict=True)
        ]
        return {
            "tracking_number": self.first_number,
            "journey": self.itinerary.name,
            "summary": self.itinerary.summary,
            "speed": self.speed,
            "started_at": self.started_at.isoformat(),
            "legs": legs,
            "events_visible": sum(leg["events_visible"] for leg in legs),
            "events_total": sum(leg["events_total"] for leg in legs),
        }


class MultiLegJourneys:
    """The itinerary catalogue and the running ones, installed into the sandboxes' state."""

    def __init__(self, catalogue: dict[str, Itinerary], scripts: ScriptState) -> None:
        self.catalogue = catalogue
        self.scripts = scripts
        self.running: dict[tuple[str, str], RunningItinerary] = {}

    def start(
        self,
        name: str,
        tracking_number: str | None,
        speed: float,
        started_at: datetime | None = None,
    ) -> RunningItinerary:
        """Start (or restart) itinerary ``name``; KeyError for an unknown name. Without a number
        the first leg gets a fresh valid one."""
        itinerary = self.catalogue[name]
        if tracking_number:
            first = tracking_number.strip().upper()
        else:
            first = itinerary.first_number(secrets.randbits(40))
        plan = itinerary.plan(first, seed_of(first))  # the other legs follow from the first
        real_start = started_at or self.scripts.clock()
        origin = real_start - plan.duration
        scripts = [(leg, _script(leg, origin, real_start, speed)) for leg in plan.legs]
        for leg, script in scripts:
            self.scripts.add(leg.carrier, script, *leg.aliases)
        for outage in plan.outages:
            self.scripts.set_outage(
                outage.carrier,
                outage.status,
                since=real_start + timedelta(hours=outage.start_h) / speed,
                until=real_start + timedelta(hours=outage.end_h) / speed,
            )
        running = RunningItinerary(itinerary, plan, real_start, speed, scripts)
        self.running[(name, first)] = running
        return running


def _script(leg: Leg, origin: datetime, real_start: datetime, speed: float) -> AcceleratedScript:
    return AcceleratedScript(
        tracking_number=leg.tracking_number,
        scans=list(leg.scans),
        started_at=origin,
        real_start=real_start,
        speed=speed,
        late={index: timedelta(hours=hours) for index, hours in leg.late},
    )

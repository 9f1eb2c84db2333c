"""In-memory state of the simulator: running journeys and injected faults, read through a clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from services.simulator.journeys import JOURNEYS, Journey, visible_steps

Clock = Callable[[], datetime]
FaultMode = Literal["5xx", "429", "slow", "garbage", "none"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunningJourney:
    tracking_number: str
    journey: Journey
    started_at: datetime
    speed: float  # journey seconds per real second

    @property
    def stamp_origin(self) -> datetime:
        """Where journey time zero sits on the calendar: one journey's length before the start, so
        every event a poll reveals is already in the past, and a restart with the same
        ``started_at`` reproduces the same timestamps (and so the same event ids)."""
        return self.started_at - self.journey.duration

    def elapsed(self, now: datetime) -> timedelta:
        """Journey time that has passed: real time since the start, accelerated by ``speed``."""
        return (now - self.started_at) * self.speed

    def describe(self, now: datetime) -> dict[str, Any]:
        return {
            "tracking_number": self.tracking_number,
            "journey": self.journey.name,
            "service": self.journey.service,
            "speed": self.speed,
            "started_at": self.started_at.isoformat(),
            "events_visible": len(visible_steps(self.journey, self.elapsed(now))),
            "events_total": len(self.journey.steps),
        }


@dataclass
class Fault:
    mode: FaultMode
    remaining: int | None = None  # requests still affected; None: no count limit
    until: datetime | None = None  # end of the fault window; None: no time limit
    retry_after_s: int = 1
    delay_s: float = 2.0

    def active(self, now: datetime) -> bool:
        if self.mode == "none":
            return False
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.until is None or now < self.until

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "remaining": self.remaining,
            "until": self.until.isoformat() if self.until else None,
            "retry_after_s": self.retry_after_s,
            "delay_s": self.delay_s,
        }


class SimulatorState:
    def __init__(self, default_speed: float, clock: Clock = utcnow) -> None:
        self.default_speed = default_speed
        self.clock = clock
        self.journeys: dict[str, RunningJourney] = {}
        self.faults: dict[str, Fault] = {}
        self.served_failures: Counter[str] = Counter()

    def start(
        self,
        tracking_number: str,
        journey: str,
        speed: float | None,
        started_at: datetime | None = None,
    ) -> RunningJourney:
        """Start (or restart) ``journey`` for ``tracking_number``; KeyError for an unknown name."""
        running = RunningJourney(
            tracking_number,
            JOURNEYS[journey],
            started_at or self.clock(),
            speed or self.default_speed,
        )
        self.journeys[tracking_number] = running
        return running

    def set_fault(
        self,
        carrier: str,
        mode: FaultMode,
        *,
        count: int | None = None,
        duration: float | None = None,
        retry_after_s: int = 1,
        delay_s: float = 2.0,
    ) -> Fault:
        until = self.clock() + timedelta(seconds=duration) if duration is not None else None
        fault = Fault(mode, count, until, retry_after_s, delay_s)
        self.faults[carrier] = fault
        return fault

    def take_fault(self, carrier: str) -> Fault | None:
        """The fault to apply to this request, if any; counts it against ``remaining``."""
        fault = self.faults.get(carrier)
        if fault is None or not fault.active(self.clock()):
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
        self.served_failures[carrier] += 1
        return fault

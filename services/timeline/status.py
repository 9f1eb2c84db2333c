"""Status derivation: pure functions over a shipment's events, safe against any arrival order.

Status is not "latest event wins": events are ordered by instant (the local wall time stands in where
the instant is unknown; payload order breaks ties), a terminal state (delivered, returned) is not
undone by older scans arriving late, and a pre-transit notice cannot pull an item that is already
moving back to ``info_received``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from services.timeline.customs import CustomsState, derive_customs
from shared.taxonomy import TERMINAL_STATUSES, Module, Status


class EventView(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def substatus(self) -> str | None: ...
    @property
    def module(self) -> str | None: ...
    @property
    def occurred_at(self) -> datetime | None: ...
    @property
    def occurred_at_local(self) -> str | None: ...
    @property
    def sequence(self) -> int: ...


E = TypeVar("E", bound=EventView)


@dataclass(frozen=True)
class Derived:
    status: Status
    substatus: str | None
    module_status: dict[str, str]
    last_event_at: datetime | None
    module: str | None = None  # the module the shipment is in now, as far as the events tell
    customs: CustomsState = CustomsState()


def sort_key(event: EventView) -> tuple[datetime, int]:
    if event.occurred_at is not None:
        instant = event.occurred_at.astimezone(UTC)
    elif event.occurred_at_local:
        # Unknown zone: the wall time is the best estimate we have (within a day of the truth).
        instant = datetime.fromisoformat(event.occurred_at_local).replace(tzinfo=UTC)
    else:
        instant = datetime.min.replace(tzinfo=UTC)
    return (instant, event.sequence)


def chronological(events: Iterable[E]) -> list[E]:
    return sorted(events, key=sort_key)


def current_event(events: Sequence[E]) -> E | None:
    """The event that decides the status, from events in chronological order."""
    if not events:
        return None
    terminal = [e for e in events if e.status in TERMINAL_STATUSES]
    if terminal:
        return terminal[-1]
    moving = [e for e in events if e.status != Status.INFO_RECEIVED]
    return (moving or list(events))[-1]


def derive(events: Iterable[EventView]) -> Derived:
    ordered = chronological(events)
    current = current_event(ordered)
    if current is None:
        return Derived(Status.PENDING, None, {}, None)
    per_module: dict[str, str] = {}
    for module in Module:
        decider = current_event([e for e in ordered if e.module == module.value])
        if decider is not None:
            per_module[module.value] = decider.status
    last = max((e.occurred_at for e in ordered if e.occurred_at is not None), default=None)
    # The decider's module, else the latest one any event named (modules only move forward).
    latest = current.module or next((e.module for e in reversed(ordered) if e.module), None)
    return Derived(
        Status(current.status),
        current.substatus,
        per_module,
        last,
        module=latest,
        customs=derive_customs(ordered),
    )

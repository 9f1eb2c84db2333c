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

from services.timeline.customs import CustomsState, derive_customs, step
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


class Fold:
    """``derive`` one event at a time, for events that arrive in chronological order.

    Folding events in ``chronological`` order from an empty ``Fold`` gives exactly ``derive`` of
    them (``tests/unit/test_status.py`` checks it on random journeys). The consumer keeps a fold per
    shipment and per leg (``state`` / ``restore``) and adds only the new events while every one of
    them sorts after the last event folded in (``extends``); a late, older event needs a fresh fold
    over all of the events, since it may change which event decides.
    """

    __slots__ = (
        "status",
        "substatus",
        "current_module",
        "latest_module",
        "module_status",
        "customs",
        "last_event_at",
        "last_key",
    )

    def __init__(self) -> None:
        self.status: str | None = None  # the deciding event's status; None before any event
        self.substatus: str | None = None
        self.current_module: str | None = None  # the deciding event's module
        self.latest_module: str | None = None  # the module of the latest event that named one
        self.module_status: dict[str, str] = {}
        self.customs = CustomsState()
        self.last_event_at: datetime | None = None
        self.last_key: tuple[datetime, int] | None = None

    def extends(self, key: tuple[datetime, int]) -> bool:
        """Whether an event with this sort key comes after everything folded in so far."""
        return self.last_key is None or key > self.last_key

    def add(self, event: EventView, key: tuple[datetime, int] | None = None) -> None:
        """Fold in the next event in chronological order."""
        status, module = str(event.status), event.module
        if _decides(self.status, status):
            self.status, self.substatus = status, event.substatus
            self.current_module = module
        if module:
            module = str(module)
            if _decides(self.module_status.get(module), status):
                self.module_status[module] = status
            self.latest_module = module
        at = event.occurred_at
        if at is not None and (self.last_event_at is None or at > self.last_event_at):
            self.last_event_at = at
        self.customs = step(self.customs, status, event.substatus, module)
        self.last_key = key if key is not None else sort_key(event)

    def derived(self) -> Derived:
        if self.status is None:
            return Derived(Status.PENDING, None, {}, None)
        return Derived(
            Status(self.status),
            self.substatus,
            dict(self.module_status),
            self.last_event_at,
            module=self.current_module or self.latest_module,
            customs=self.customs,
        )

    def state(self) -> dict[str, object]:
        """What a stored row keeps besides its status columns, to go on folding later."""
        key = self.last_key
        return {
            "at": key[0].isoformat() if key else None,
            "seq": key[1] if key else None,
            "cm": self.current_module,
            "lm": self.latest_module,
        }

    @classmethod
    def restore(
        cls,
        state: dict[str, object] | None,
        status: str | None,
        substatus: str | None,
        module_status: dict[str, str] | None = None,
        customs: dict[str, str | None] | None = None,
        last_event_at: datetime | None = None,
    ) -> Fold | None:
        """A fold from a stored row (None when the row has no fold state: derive afresh)."""
        if not state:
            return None
        fold = cls()
        at, seq = state.get("at"), state.get("seq")
        if at is None:  # no event folded in yet
            return fold
        fold.last_key = (datetime.fromisoformat(str(at)), int(seq))  # type: ignore[call-overload]
        fold.status = status
        fold.substatus = substatus
        fold.current_module = state.get("cm")  # type: ignore[assignment]
        fold.latest_module = state.get("lm")  # type: ignore[assignment]
        fold.module_status = dict(module_status or {})
        fold.customs = CustomsState.from_dict(customs)
        fold.last_event_at = last_event_at
        return fold


def _decides(current: str | None, status: str) -> bool:
    """Whether a later event with ``status`` replaces the deciding event (see current_event)."""
    if status in TERMINAL_STATUSES:
        return True
    if current is None or current == Status.INFO_RECEIVED:
        return True  # nothing moving yet: the last event decides
    return current not in TERMINAL_STATUSES and status != Status.INFO_RECEIVED

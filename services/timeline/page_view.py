"""What the tracking page shows, in words: ``TrackingOut`` turned into plain values for the template.

Fields the public view may gain (``customs``, ``next_step``, more per leg or per module) are read
with ``getattr`` and rendered generically, so the page shows them when they appear and never
breaks while they are absent. Every string here is still escaped by the template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel

from services.timeline.schemas import ModuleTimeline, PublicEvent, TrackingOut
from shared.taxonomy import Module


@dataclass(frozen=True)
class Label:
    """A status as text, with a tone and a symbol that only repeat what the text says."""

    text: str
    tone: str  # done | active | warn | problem | idle
    symbol: str


@dataclass(frozen=True)
class Moment:
    local_text: str | None
    local_attr: str | None
    note: str
    utc_text: str | None = None
    utc_attr: str | None = None


@dataclass(frozen=True)
class EventView:
    when: Moment
    status: Label
    what: str
    detail: str | None
    place: str | None
    carrier: str
    number: str


@dataclass(frozen=True)
class ModuleView:
    key: str
    step: int
    title: str
    blurb: str
    status: Label
    carriers: list[tuple[str, str]]
    events: list[EventView]
    empty_text: str
    own_status: str | None = None
    show_carrier: bool = False
    facts: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class LegView:
    position: int
    carrier: str
    number: str
    entered: bool
    status: Label | None
    where: str | None
    facts: list[tuple[str, str]]


@dataclass(frozen=True)
class ParcelView:
    number: str
    status: Label
    detail: str | None
    latest: EventView | None
    legs: list[LegView]
    modules: list[ModuleView]
    customs: list[tuple[str, Label]]
    next_step: str | None


_STATUS: dict[str, Label] = {
    "pending": Label("Registered, waiting for the first scan", "idle", "○"),
    "info_received": Label("Label created, waiting for the carrier", "idle", "○"),
    "in_transit": Label("In transit", "active", "→"),
    "out_for_delivery": Label("Out for delivery", "active", "→"),
    "failed_attempt": Label("Delivery attempted", "warn", "!"),
    "available_for_pickup": Label("Ready for pickup", "warn", "!"),
    "delivered": Label("Delivered", "done", "✓"),
    "exception": Label("Problem reported", "problem", "!"),
    "returned": Label("Returned to sender", "problem", "↩"),
}
_NOT_STARTED = Label("Not started yet", "idle", "–")
_SKIPPED = Label("No scans reported", "idle", "–")
_COMPLETED = Label("Completed", "done", "✓")

_MODULES: dict[str, tuple[str, str]] = {
    Module.ORIGIN.value: ("Origin", "Pickup and first mile in the sending country."),
    Module.INTERNATIONAL.value: (
        "International",
        "Export customs, the journey between countries and import customs.",
    ),
    Module.DESTINATION.value: ("Destination", "Local delivery in the receiving country."),
}

_CARRIERS = {
    "dhl": "DHL",
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "4px": "4PX",
    "sf": "SF Express",
    "yunexpress": "YunExpress",
    "chinapost": "China Post",
    "royalmail": "Royal Mail",
    "laposte": "La Poste",
    "auspost": "Australia Post",
    "canadapost": "Canada Post",
}
_FACT_LABELS = {"modules": "Covers"}
_CUSTOMS_SIDES = {"export": "Export customs", "import": "Import customs", "duties": "Import duties"}
_CUSTOMS_WORDS = {
    "presented": Label("Being checked", "active", "→"),
    "held": Label("Held", "warn", "!"),
    "released": Label("Cleared", "done", "✓"),
    "payable": Label("To be paid", "warn", "!"),
    "paid": Label("Paid", "done", "✓"),
}
_LEG_FIELDS = frozenset({"position", "carrier", "tracking_number", "status", "module"})
_NEXT_STEP_KEYS = ("text", "summary", "description", "message", "label", "title")
_TOKEN = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")
_MAX_TEXT = 300


def humanise(value: str) -> str:
    """``export_customs_released`` -> ``Export customs released``; other text stays as written."""
    if _TOKEN.match(value):
        return value.replace("_", " ").capitalize()
    return value


def status_label(status: str | None) -> Label:
    if status is None:
        return _NOT_STARTED
    return _STATUS.get(status, Label(humanise(status), "idle", "•"))


def carrier_name(carrier: str) -> str:
    if carrier in _CARRIERS:
        return _CARRIERS[carrier]
    return carrier.upper() if len(carrier) <= 4 else humanise(carrier.replace("-", "_"))


def _utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC) if instant.tzinfo else instant.replace(tzinfo=UTC)


def _day(dt: datetime) -> str:
    return f"{dt.day} {dt:%b %Y}"


def _clock(dt: datetime) -> str:
    return f"{dt:%a} {_day(dt)}, {dt:%H:%M}"


def moment(local: str | None, offset: str | None, instant: datetime | None, basis: str) -> Moment:
    """Local wall time as the carrier wrote it; the UTC instant beside it where it is known."""
    offset = offset if offset and _OFFSET.match(offset) else None
    note = f"local time (UTC{offset})" if offset and basis != "unknown" else "local time"
    local_text = local_attr = None
    wall: datetime | None = None
    if local:
        try:
            wall = datetime.fromisoformat(local).replace(tzinfo=None)
        except ValueError:
            local_text = local[:40]
        else:
            local_text = _clock(wall)
            local_attr = wall.isoformat() + (offset or "")
    if instant is None:
        return Moment(local_text, local_attr, note)
    utc = _utc(instant)
    utc_text = f"{utc:%H:%M} UTC" if wall and wall.date() == utc.date() else f"{_clock(utc)} UTC"
    utc_attr = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if local_text is None:
        return Moment(_clock(utc), utc_attr, "UTC")
    return Moment(local_text, local_attr, note, utc_text, utc_attr)


def _place(event: PublicEvent) -> str | None:
    loc = event.location
    if loc is None:
        return None
    parts: list[str] = []
    for part in (loc.facility, loc.city, loc.region, loc.country):
        if part and part not in parts:
            parts.append(part)
    return ", ".join(parts) or None


def event_view(event: PublicEvent) -> EventView:
    status = status_label(event.status)
    detail = humanise(event.substatus) if event.substatus else None
    return EventView(
        when=moment(event.occurred_at_local, event.utc_offset, event.occurred_at, event.time_basis),
        status=status,
        what=event.description.strip() or detail or status.text,
        detail=detail,
        place=_place(event),
        carrier=carrier_name(event.carrier),
        number=event.tracking_number,
    )


def text_of(value: Any, name: str = "") -> str | None:
    """Any field value as one short line of text, or None when there is nothing to say."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime):
        return f"{_clock(_utc(value))} UTC"
    if isinstance(value, str):
        text = status_label(value).text if name == "status" else humanise(value)
    elif isinstance(value, BaseModel | dict):
        text = "; ".join(f"{k}: {v}" for k, v in facts_of(value))
    elif isinstance(value, list | tuple | set):
        text = ", ".join(t for t in (text_of(v, name) for v in value) if t)
    else:
        text = str(value)
    return text[:_MAX_TEXT] or None


def _fields(value: Any) -> list[tuple[str, Any]]:
    """A model's or mapping's fields by their wire names (the field ``import_`` is ``import``)."""
    if isinstance(value, BaseModel):
        return [
            ((info.alias or name).rstrip("_"), getattr(value, name, None))
            for name, info in type(value).model_fields.items()
        ]
    if isinstance(value, dict):
        return [(str(k), v) for k, v in value.items()]
    return []


def facts_of(value: Any, skip: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """A model's or mapping's fields as (label, text) pairs, leaving out empty ones."""
    if not isinstance(value, BaseModel | dict):
        text = text_of(value)
        return [("Status", text)] if text else []
    facts = []
    for name, item in _fields(value):
        text = text_of(item, name)
        if name not in skip and text:
            facts.append((_FACT_LABELS.get(name, humanise(name)), text))
    return facts


def customs_view(value: Any) -> list[tuple[str, Label]]:
    """Customs per side as far as the carriers told; nothing when no side has news."""
    items = [("customs", value)] if isinstance(value, str) else _fields(value)
    sides = []
    for name, item in items:
        text = text_of(item)
        if text:
            word = _CUSTOMS_WORDS.get(item) if isinstance(item, str) else None
            sides.append(
                (_CUSTOMS_SIDES.get(name, humanise(name)), word or Label(text, "idle", "•"))
            )
    return sides


def _leg_view(leg: BaseModel, entered: str) -> LegView:
    """A leg with its own status and the module it was last seen in, where the view has them."""
    status, module = getattr(leg, "status", None), getattr(leg, "module", None)
    number = str(getattr(leg, "tracking_number", ""))
    return LegView(
        position=int(getattr(leg, "position", 0)),
        carrier=carrier_name(str(getattr(leg, "carrier", ""))),
        number=number,
        entered=number == entered,
        status=status_label(status) if isinstance(status, str) else None,
        where=_MODULES.get(module, (humanise(module), ""))[0] if isinstance(module, str) else None,
        facts=facts_of(leg, _LEG_FIELDS),
    )


def next_step_text(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        for key in _NEXT_STEP_KEYS:
            if isinstance(value.get(key), str) and value[key].strip():
                return str(value[key]).strip()[:_MAX_TEXT]
    return text_of(value)


def _module_view(module: ModuleTimeline, step: int, later_started: bool) -> ModuleView:
    title, blurb = _MODULES.get(module.module, (humanise(module.module), ""))
    carriers: list[tuple[str, str]] = []
    for event in module.events:
        pair = (carrier_name(event.carrier), event.tracking_number)
        if pair not in carriers:
            carriers.append(pair)
    status = status_label(module.status)
    own_status = None
    empty_text = "No scans in this part of the journey yet."
    if later_started:
        # The parcel has moved on: a module still "in transit" by its own last scan is done.
        empty_text = "No scans were reported for this part of the journey."
        if module.status is None:
            status = _SKIPPED
        elif status.tone in ("active", "idle"):
            status, own_status = _COMPLETED, status.text
    return ModuleView(
        key=module.module,
        step=step,
        title=title,
        blurb=blurb,
        status=status,
        carriers=carriers,
        events=[event_view(e) for e in module.events],
        empty_text=empty_text,
        own_status=own_status,
        show_carrier=len(carriers) > 1,
        facts=facts_of(module, frozenset({"module", "status", "events"})),
    )


def _instant(event: PublicEvent) -> datetime:
    if event.occurred_at is not None:
        return _utc(event.occurred_at)
    try:
        return datetime.fromisoformat(event.occurred_at_local or "").replace(tzinfo=UTC)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def parcel_view(tracking: TrackingOut) -> ParcelView:
    modules = tracking.modules
    started = [bool(m.events or m.status) for m in modules]
    everything = [e for m in modules for e in m.events]
    latest = max(everything, key=_instant) if everything else None
    return ParcelView(
        number=tracking.tracking_number,
        status=status_label(tracking.status),
        detail=humanise(tracking.substatus) if tracking.substatus else None,
        latest=event_view(latest) if latest else None,
        legs=[_leg_view(leg, tracking.tracking_number) for leg in tracking.legs],
        modules=[_module_view(m, i + 1, any(started[i + 1 :])) for i, m in enumerate(modules)],
        customs=customs_view(getattr(tracking, "customs", None)),
        next_step=next_step_text(getattr(tracking, "next_step", None)),
    )

"""Opening legs on shipments and deriving their state: the session side of ``linking``'s rules.

One unit of work (``Work``) holds the shipments it read as plain objects and writes everything back
in a handful of set-based statements at the end (``Work.finish``), whatever the number of events,
shipments and legs involved:

- the shipments that hold a number are read (and on PostgreSQL locked) once per set of numbers;
- opening a leg may reveal more: the new numbers' stored events are read, one query per round of
  new legs, for further hand-offs (``follow_new_legs``); a tenant-less shipment that was made for
  events nobody registered folds into the shipment that turns out to own its number (its legs move
  there, it keeps a pointer);
- status is folded forward from the stored fold state (``status.Fold``) with the new events when
  they all come after the last event folded in, and derived afresh from all stored events
  otherwise (late scans, corrected events, legs that bring stored events along).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.timeline import repository
from services.timeline.linking import FIRST_EVENT, EventFacts, Link, links_from_event
from services.timeline.status import Fold, sort_key
from shared.bus import OutRecord
from shared.db import utcnow
from shared.errors import RetryableError
from shared.outbox import insert_outbox
from shared.taxonomy import Status

log = logging.getLogger("throughline.timeline")

# A runaway chain of hand-offs (a carrier quoting numbers in every scan) stops here.
MAX_LEGS = 12

Key = tuple[str, str]  # (carrier, tracking_number)
# Queues records for publishing when the session commits: ``shared.outbox.insert_outbox``, or
# ``OutboxRelay.stage`` (straight into the SQL log when that is the bus).
Stage = Callable[[AsyncSession, str, Sequence[OutRecord]], Awaitable[None]]


def _json(text: str | None) -> Any:
    """JSON columns are read as text (``repository``): parsed here, with orjson."""
    return None if text is None else orjson.loads(text)


@dataclass(eq=False)
class LegState:
    id: uuid.UUID
    shipment_id: uuid.UUID
    position: int
    carrier: str
    tracking_number: str
    opened_by: str
    evidence: str | None
    confidence: float
    detected: bool
    created_at: datetime
    status: str | None = None
    substatus: str | None = None
    module: str | None = None
    derivation: dict[str, Any] | None = None
    new: bool = False  # not stored yet
    dirty: bool = False

    @property
    def key(self) -> Key:
        return (self.carrier, self.tracking_number)

    @classmethod
    def of(cls, row: Any) -> LegState:
        return cls(
            row.id, row.shipment_id, row.position, row.carrier, row.tracking_number,
            row.opened_by, row.evidence, row.confidence, row.detected, row.created_at,
            row.status, row.substatus, row.module, _json(row.derivation),
        )  # fmt: skip

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id, "shipment_id": self.shipment_id, "position": self.position,
            "carrier": self.carrier, "tracking_number": self.tracking_number,
            "opened_by": self.opened_by, "evidence": self.evidence,
            "confidence": self.confidence, "detected": self.detected, "status": self.status,
            "substatus": self.substatus, "module": self.module, "derivation": self.derivation,
            "created_at": self.created_at,
        }  # fmt: skip


@dataclass(eq=False)
class ShipmentState:
    id: uuid.UUID
    tenant_id: uuid.UUID | None
    carrier: str
    tracking_number: str
    merchant_reference: str | None
    origin_country: str | None
    destination_country: str | None
    status: str
    substatus: str | None
    module_status: dict[str, Any]
    customs: dict[str, Any] | None
    last_event_at: datetime | None
    merged_into_id: uuid.UUID | None
    derivation: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    legs: list[LegState] = field(default_factory=list)
    new: bool = False
    dirty: bool = False

    @classmethod
    def of(cls, row: Any) -> ShipmentState:
        return cls(
            row.id, row.tenant_id, row.carrier, row.tracking_number, row.merchant_reference,
            row.origin_country, row.destination_country, row.status, row.substatus,
            _json(row.module_status) or {}, _json(row.customs), row.last_event_at,
            row.merged_into_id, _json(row.derivation), row.created_at, row.updated_at,
        )  # fmt: skip

    @classmethod
    def create(
        cls, carrier: str, tracking_number: str, tenant_id: uuid.UUID | None = None, **extra: Any
    ) -> ShipmentState:
        now = utcnow()
        return cls(
            uuid.uuid4(), tenant_id, carrier, tracking_number, extra.get("merchant_reference"),
            extra.get("origin_country"), extra.get("destination_country"), Status.PENDING.value,
            None, {}, None, None, None, None, now, now, new=True,
        )  # fmt: skip

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id, "tenant_id": self.tenant_id, "carrier": self.carrier,
            "tracking_number": self.tracking_number, "merchant_reference": self.merchant_reference,
            "origin_country": self.origin_country, "destination_country": self.destination_country,
            "created_at": self.created_at, **self.state_row(),
        }  # fmt: skip

    def state_row(self) -> dict[str, Any]:
        return {
            "status": self.status, "substatus": self.substatus,
            "module_status": self.module_status, "customs": self.customs,
            "last_event_at": self.last_event_at, "merged_into_id": self.merged_into_id,
            "derivation": self.derivation, "updated_at": self.updated_at,
        }  # fmt: skip

    def leg(self, key: Key) -> LegState | None:
        return next((leg for leg in self.legs if leg.key == key), None)

    @property
    def live(self) -> bool:
        return self.merged_into_id is None


class Work:
    """The shipments one unit of work read, touched and changed; written back by ``finish``."""

    def __init__(self, session: AsyncSession):
        self.session = session
        self.shipments: dict[uuid.UUID, ShipmentState] = {}
        self.holders: dict[str, list[ShipmentState]] = {}  # number -> shipments with such a leg
        self.known: set[str] = set()  # numbers whose every holder is loaded
        self.touched: dict[uuid.UUID, ShipmentState] = {}
        self.added: dict[uuid.UUID, list[Key]] = {}
        self.unscanned: list[tuple[ShipmentState, Key]] = []
        self.removed: list[LegState] = []  # stored legs of merged shipments
        self.events: dict[Key, list[Any]] = {}  # every stored event of a key, once read
        self.new_events: dict[Key, list[Any]] = {}  # what this unit of work stored or corrected
        self.corrected: set[Key] = set()  # keys with an event corrected in place

    # --- reading -------------------------------------------------------------------------------

    async def load_numbers(self, numbers: Iterable[str]) -> None:
        """Make sure every shipment holding one of these numbers (any carrier) is in memory."""
        missing = set(numbers) - self.known
        if not missing:
            return
        shipments, legs = await repository.shipments_holding(self.session, missing)
        self._adopt_rows(shipments, legs)
        self.known |= missing

    async def load_shipment(self, shipment_id: uuid.UUID) -> ShipmentState:
        if shipment_id not in self.shipments:
            shipments, legs = await repository.shipments_by_id(self.session, [shipment_id])
            self._adopt_rows(shipments, legs)
        return self.shipments[shipment_id]

    def _adopt_rows(self, shipments: Sequence[Any], legs: Sequence[Any]) -> None:
        fresh: dict[uuid.UUID, ShipmentState] = {}
        for row in shipments:
            if row.id not in self.shipments:
                fresh[row.id] = self.shipments[row.id] = ShipmentState.of(row)
        for row in legs:
            owner = fresh.get(row.shipment_id)
            if owner is not None:
                owner.legs.append(LegState.of(row))
        for shipment in fresh.values():
            self._index(shipment)

    def _index(self, shipment: ShipmentState) -> None:
        for leg in shipment.legs:
            holders = self.holders.setdefault(leg.tracking_number, [])
            if shipment not in holders:
                holders.append(shipment)

    async def read_events(self, keys: Iterable[Key]) -> None:
        missing = {k for k in keys if k not in self.events}
        if missing:
            self.events.update(await repository.event_rows(self.session, missing))

    # --- in memory -----------------------------------------------------------------------------

    def create(self, shipment: ShipmentState) -> ShipmentState:
        self.shipments[shipment.id] = shipment
        self._index(shipment)
        return shipment

    def touch(self, shipments: Iterable[ShipmentState]) -> None:
        for shipment in shipments:
            self.touched.setdefault(shipment.id, shipment)

    def live(self) -> list[ShipmentState]:
        return [s for s in self.touched.values() if s.live]

    def owners(self, key: Key) -> list[ShipmentState]:
        """Loaded live shipments with a leg of exactly this key."""
        return [s for s in self.holders.get(key[1], ()) if s.live and s.leg(key) is not None]

    def holding(self, number: str) -> list[ShipmentState]:
        """Loaded live shipments with a leg of this number under any carrier."""
        return [
            s
            for s in self.holders.get(number, ())
            if s.live and any(leg.tracking_number == number for leg in s.legs)
        ]

    def claimed(self, key: Key) -> bool:
        return any(s.id in self.touched for s in self.owners(key))

    def add_leg(self, shipment: ShipmentState, link: Link) -> LegState:
        leg = LegState(
            id=uuid.uuid4(),
            shipment_id=shipment.id,
            position=max((leg.position for leg in shipment.legs), default=-1) + 1,
            carrier=link.carrier,
            tracking_number=link.tracking_number,
            opened_by=link.opened_by,
            evidence=link.evidence,
            confidence=link.confidence,
            detected=link.detected,
            created_at=utcnow(),
            new=True,
        )
        shipment.legs.append(leg)
        self._index(shipment)
        return leg

    def remove_legs(self, shipment: ShipmentState) -> None:
        self.removed.extend(leg for leg in shipment.legs if not leg.new)
        shipment.legs = []

    # --- deriving and writing ------------------------------------------------------------------

    async def finish(
        self,
        topic: str,
        always_publish: set[uuid.UUID] | None = None,
        stage: Stage = insert_outbox,
    ) -> int:
        """Derive every touched shipment and its legs, write all changes, queue the updates
        (``stage``: the outbox unless told otherwise); returns how many updates were queued."""
        shipments = self.live()
        # Legs gained here bring all of their stored events along (usually read already).
        await self.read_events(leg.key for s in shipments for leg in s.legs if leg.new)
        plans: list[tuple[ShipmentState, Plan, list[Plan]]] = []
        wanted: set[Key] = set()
        for shipment in shipments:
            plan = self._plan(None if shipment.new else _shipment_fold(shipment), shipment.legs)
            if plan is None:
                wanted.update(leg.key for leg in shipment.legs)
            leg_plans = [
                self._plan(None if leg.new else _leg_fold(leg), [leg]) for leg in shipment.legs
            ]
            wanted.update(
                leg.key for leg, p in zip(shipment.legs, leg_plans, strict=True) if p is None
            )
            plans.append((shipment, plan, leg_plans))
        await self.read_events(wanted)
        now = utcnow()
        updates: list[OutRecord] = []
        for shipment, plan, leg_plans in plans:
            legs_changed = False
            for leg, leg_plan in zip(shipment.legs, leg_plans, strict=True):
                legs_changed = _set_leg(leg, self._folded(leg_plan, [leg])) or legs_changed
            previous = shipment.status
            changed = _set_shipment(shipment, self._folded(plan, shipment.legs), now)
            added = self.added.get(shipment.id, [])
            if changed or legs_changed or added or shipment.id in (always_publish or ()):
                updates.append(update_record(shipment, previous, added))
        await self._write()
        await stage(self.session, topic, updates)
        return len(updates)

    def _plan(self, fold: Fold | None, legs: list[LegState]) -> Plan:
        """The stored fold and the events new to it, sorted, when they all come after it; None
        when the state must be derived afresh from every stored event of the legs."""
        if fold is None:
            return None
        keyed = []
        for leg in legs:
            if leg.key in self.corrected:
                return None
            # A leg gained here brings every stored event of its number, else just the new ones.
            events = self.events[leg.key] if leg.new else self.new_events.get(leg.key, ())
            for event in events:
                key = sort_key(event)
                if not fold.extends(key):
                    return None
                keyed.append((key, event))
        keyed.sort(key=_first)
        return fold, keyed

    def _folded(self, plan: Plan, legs: list[LegState]) -> Fold:
        if plan is None:
            fold = Fold()
            keyed = sorted(
                ((sort_key(e), e) for leg in legs for e in self.events[leg.key]), key=_first
            )
        else:
            fold, keyed = plan
        for key, event in keyed:
            fold.add(event, key)
        return fold

    async def _write(self) -> None:
        session = self.session
        created = [s for s in self.shipments.values() if s.new]
        await repository.insert_shipments(session, [s.row() for s in created])
        if self.removed:
            await repository.delete_legs(session, [leg.id for leg in self.removed])
        new_legs = [leg for s in self.shipments.values() for leg in s.legs if leg.new]
        inserted = await repository.insert_legs(session, [leg.row() for leg in new_legs])
        if len(inserted) != len(new_legs):
            # Another writer opened one of these legs meanwhile: start the unit of work again.
            raise RetryableError("a leg was opened concurrently; retrying the unit of work")
        await repository.update_shipments(
            session,
            [
                {"id": s.id, **s.state_row()}
                for s in self.shipments.values()
                if s.dirty and not s.new
            ],
        )
        await repository.update_legs(
            session,
            [
                {
                    "id": leg.id,
                    "status": leg.status,
                    "substatus": leg.substatus,
                    "module": leg.module,
                    "derivation": leg.derivation,
                }  # fmt: skip
                for s in self.shipments.values()
                for leg in s.legs
                if leg.dirty and not leg.new
            ],
        )


Plan = tuple[Fold, list[tuple[tuple[datetime, int], Any]]] | None


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _set_leg(leg: LegState, fold: Fold) -> bool:
    """A leg's own state from its number's events; True when its status changed."""
    derived = fold.derived()
    if fold.status is None:  # no events yet
        state: tuple[str | None, str | None, str | None] = (None, None, None)
    else:
        state = (derived.status.value, derived.substatus, derived.module)
    derivation = fold.state()
    changed = (leg.status, leg.substatus, leg.module) != state
    if changed:
        leg.status, leg.substatus, leg.module = state
        leg.dirty = True
    if leg.derivation != derivation:
        leg.derivation = derivation
        leg.dirty = True
    return changed


def _set_shipment(shipment: ShipmentState, fold: Fold, now: datetime) -> bool:
    """The shipment's state from all of its legs' events; True when its status changed."""
    derived = fold.derived()
    customs = derived.customs.as_dict()
    changed = (
        shipment.status != derived.status.value
        or shipment.substatus != derived.substatus
        or shipment.module_status != derived.module_status
        or (shipment.customs or {}) != customs
    )
    if changed or shipment.last_event_at != derived.last_event_at:
        shipment.status = derived.status.value
        shipment.substatus = derived.substatus
        shipment.module_status = derived.module_status
        shipment.customs = customs
        shipment.last_event_at = derived.last_event_at
        shipment.updated_at = now
        shipment.dirty = True
    derivation = fold.state()
    if shipment.derivation != derivation:
        shipment.derivation = derivation
        shipment.dirty = True
    return changed


def _shipment_fold(shipment: ShipmentState) -> Fold | None:
    return Fold.restore(
        shipment.derivation,
        shipment.status,
        shipment.substatus,
        shipment.module_status,
        shipment.customs,
        shipment.last_event_at,
    )


def _leg_fold(leg: LegState) -> Fold | None:
    return Fold.restore(leg.derivation, leg.status, leg.substatus)


# --- linking -------------------------------------------------------------------------------------


async def link_leg(work: Work, shipment: ShipmentState, link: Link) -> bool:
    """Open a leg on ``shipment`` (no-op if it has it) and absorb tenant-less duplicates."""
    work.touch([shipment])
    if not shipment.live or shipment.leg(link.key) is not None:
        return False
    if len(shipment.legs) >= MAX_LEGS:
        log.warning("leg limit reached", extra={"shipment": str(shipment.id), "link": link.key})
        return False
    work.add_leg(shipment, link)
    work.added.setdefault(shipment.id, []).append(link.key)
    work.unscanned.append((shipment, link.key))
    await _absorb(work, shipment, link.key)
    return True


async def _absorb(work: Work, shipment: ShipmentState, key: Key) -> None:
    """Tenant-less shipments made for events nobody registered fold into the shipment that
    turned out to own their number; a tenant-less shipment folds into registered owners."""
    await work.load_numbers([key[1]])
    others = [s for s in work.owners(key) if s.id != shipment.id]
    work.touch(others)
    if shipment.tenant_id is None and any(o.tenant_id is not None for o in others):
        await _merge(work, shipment, [o for o in others if o.tenant_id is not None])
        return
    for other in others:
        if other.tenant_id is None and other.live:
            await _merge(work, other, [shipment])


async def _merge(work: Work, source: ShipmentState, targets: list[ShipmentState]) -> None:
    legs = [
        Link(
            leg.carrier,
            leg.tracking_number,
            leg.opened_by,
            leg.evidence or "",
            leg.confidence,
            leg.detected,
        )
        for leg in source.legs
    ]
    work.remove_legs(source)
    source.merged_into_id = targets[0].id
    source.updated_at = utcnow()
    source.dirty = True
    log.info(
        "tenant-less shipment merged",
        extra={"shipment": str(source.id), "into": [str(t.id) for t in targets]},
    )
    for target in targets:
        for link in legs:
            await link_leg(work, target, link)


async def link_events(work: Work, shipments: list[ShipmentState], events: Sequence[Any]) -> None:
    owners: dict[Key, list[ShipmentState]] = {}
    for shipment in shipments:
        for leg in shipment.legs:
            owners.setdefault(leg.key, []).append(shipment)
    for event in events:
        holders = owners.get((event.carrier, event.tracking_number))
        if not holders:
            continue
        facts = EventFacts.of(event)
        for shipment in holders:
            if shipment.live:  # a merge moved its legs on; they are followed
                for link in links_from_event(facts, shipment.destination_country):
                    await link_leg(work, shipment, link)


async def follow_new_legs(work: Work) -> None:
    """A new leg's number may have events stored already (polled, pushed, or merged in): read
    them for further hand-offs until no new leg appears; one query per round of new legs."""
    while work.unscanned:
        batch, work.unscanned = work.unscanned, []
        await work.read_events(key for shipment, key in batch if shipment.live)
        for shipment, key in batch:
            if not shipment.live:
                continue
            for facts in (EventFacts.of(row) for row in work.events[key]):
                for link in links_from_event(facts, shipment.destination_country):
                    await link_leg(work, shipment, link)


def first_leg(shipment: ShipmentState, carrier: str, number: str) -> None:
    """The leg a tenant-less shipment is made with (not an added leg: nothing announces it)."""
    shipment.legs.append(
        LegState(
            id=uuid.uuid4(),
            shipment_id=shipment.id,
            position=0,
            carrier=carrier,
            tracking_number=number,
            opened_by=FIRST_EVENT,
            evidence=None,
            confidence=1.0,
            detected=False,
            created_at=utcnow(),
            new=True,
        )  # fmt: skip
    )


# --- shipment.updates.v1 -------------------------------------------------------------------------


def _leg_ref(leg: LegState) -> dict[str, Any]:
    return {
        "carrier": leg.carrier,
        "tracking_number": leg.tracking_number,
        "status": leg.status,
        "substatus": leg.substatus,
        "module": leg.module,
        "detected": leg.detected,
    }


def update_record(shipment: ShipmentState, previous: str | None, added: list[Key]) -> OutRecord:
    """The ``ShipmentUpdate`` of a shipment, encoded as ``shared.schema.encode`` would."""
    status = shipment.status
    value = {
        "kind": "shipment_update",
        "shipment_id": str(shipment.id),
        "tenant_id": str(shipment.tenant_id) if shipment.tenant_id else None,
        "status": status,
        "substatus": shipment.substatus,
        "previous_status": previous if previous and previous != status else None,
        "legs": [_leg_ref(leg) for leg in shipment.legs],
        "added_legs": [_leg_ref(leg) for leg in shipment.legs if leg.key in added],
        "last_event_at": shipment.last_event_at,
        "updated_at": shipment.updated_at,
    }
    return OutRecord(key=str(shipment.id), value=orjson.dumps(value, option=orjson.OPT_UTC_Z))


def find_leg(shipment: Any, key: Key) -> Any:
    return next((leg for leg in shipment.legs if (leg.carrier, leg.tracking_number) == key), None)

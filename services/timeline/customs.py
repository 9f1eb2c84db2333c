"""Customs state of a shipment, derived from its events' substatuses (pure, order-safe).

Three sides: ``export`` and ``import`` (presented, held, released) and ``duties`` (payable, paid).
Events are read in journey order (``status.chronological``), so the result does not depend on the
order in which they arrived. Within a side a later "presented" never undoes a hold or a release,
and progress further down the journey implies a release nobody scanned: an item that left the origin
country is through export customs, one with the destination carrier is through import customs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

from shared.taxonomy import Module, Status, Substatus

Side = Literal["presented", "held", "released"]
Duties = Literal["payable", "paid"]

U = Substatus
_EXPORT: dict[str, Side] = {
    U.EXPORT_CUSTOMS_PRESENTED: "presented",
    U.EXPORT_CUSTOMS_HELD: "held",
    U.EXPORT_CUSTOMS_RELEASED: "released",
}
_IMPORT: dict[str, Side] = {
    U.IMPORT_CUSTOMS_PRESENTED: "presented",
    U.IMPORT_CUSTOMS_HELD: "held",
    U.IMPORT_CUSTOMS_RELEASED: "released",
}
_DUTIES: dict[str, Duties] = {U.DUTIES_PAYABLE: "payable", U.DUTIES_PAID: "paid"}
# Substatuses that can only happen once the item has left export customs behind.
_PAST_EXPORT = frozenset(
    {U.DEPARTED_ORIGIN_COUNTRY, U.ARRIVED_DESTINATION_COUNTRY, *_IMPORT, *_DUTIES}
)
# Statuses that only happen once import customs let the item go.
_PAST_IMPORT_STATUS = frozenset(
    {Status.OUT_FOR_DELIVERY, Status.AVAILABLE_FOR_PICKUP, Status.DELIVERED}
)


@dataclass(frozen=True)
class CustomsState:
    export: Side | None = None
    import_: Side | None = None
    duties: Duties | None = None

    def as_dict(self) -> dict[str, str | None]:
        values = asdict(self)
        return {"export": values["export"], "import": values["import_"], "duties": values["duties"]}

    @classmethod
    def from_dict(cls, values: dict[str, str | None] | None) -> CustomsState:
        values = values or {}
        return cls(values.get("export"), values.get("import"), values.get("duties"))  # type: ignore[arg-type]


def _side(current: Side | None, seen: Side) -> Side | None:
    # A later "presented" (a re-scan at the same office) does not undo a hold or a release.
    return current if seen == "presented" and current is not None else seen


def _released_if_open(current: Side | None) -> Side | None:
    return "released" if current in ("presented", "held") else current


class Scan(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def substatus(self) -> str | None: ...
    @property
    def module(self) -> str | None: ...


def step(
    state: CustomsState, status: str, substatus: str | None, module: str | None
) -> CustomsState:
    """The state after one more event, in journey order."""
    export, import_, duties = state.export, state.import_, state.duties
    if substatus in _EXPORT:
        export = _side(export, _EXPORT[substatus])
    elif substatus in _IMPORT:
        import_ = _side(import_, _IMPORT[substatus])
    elif substatus in _DUTIES and duties != "paid":
        duties = _DUTIES[substatus]
    past_import = status in _PAST_IMPORT_STATUS or substatus == U.HANDED_OVER
    if past_import or substatus in _PAST_EXPORT or module == Module.DESTINATION:
        export = _released_if_open(export)
    if past_import:
        # A destination-country scan is not enough: items wait in customs at sorting centres.
        import_ = _released_if_open(import_)
    if status == Status.DELIVERED and duties == "payable":
        duties = "paid"  # collected at the door
    if export == state.export and import_ == state.import_ and duties == state.duties:
        return state
    return CustomsState(export, import_, duties)


def derive_customs(ordered: Iterable[Scan]) -> CustomsState:
    """Customs state from events already in journey order."""
    state = CustomsState()
    for event in ordered:
        state = step(state, event.status, event.substatus, event.module)
    return state

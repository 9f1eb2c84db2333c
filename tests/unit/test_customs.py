"""Customs state and the plain-language next step: derived from substatuses, in any arrival order."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from services.timeline.customs import CustomsState
from services.timeline.status import derive
from services.timeline.views import next_step

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Ev:
    status: str
    hours: float
    substatus: str | None = None
    module: str | None = None
    sequence: int = 0

    @property
    def occurred_at(self) -> datetime:
        return T0 + timedelta(hours=self.hours)

    @property
    def occurred_at_local(self) -> str | None:
        return None


CUSTOMS_JOURNEY = [
    Ev("in_transit", 0, "picked_up", "origin"),
    Ev("in_transit", 5, "export_customs_presented", "international"),
    Ev("in_transit", 8, "export_customs_released", "international"),
    Ev("in_transit", 10, "departed_origin_country", "international"),
    Ev("in_transit", 30, "arrived_destination_country", "international"),
    Ev("in_transit", 31, "import_customs_presented", "international"),
    Ev("exception", 33, "import_customs_held", "international"),
    Ev("in_transit", 50, "duties_payable", "international"),
]


def customs(events: list[Ev]) -> dict[str, str | None]:
    return derive(events).customs.as_dict()


def test_customs_follows_the_journey() -> None:
    assert customs(CUSTOMS_JOURNEY[:2]) == {"export": "presented", "import": None, "duties": None}
    assert customs(CUSTOMS_JOURNEY[:5]) == {"export": "released", "import": None, "duties": None}
    assert customs(CUSTOMS_JOURNEY[:7]) == {"export": "released", "import": "held", "duties": None}
    assert customs(CUSTOMS_JOURNEY) == {"export": "released", "import": "held", "duties": "payable"}
    paid = [*CUSTOMS_JOURNEY, Ev("in_transit", 60, "duties_paid", "international")]
    released = [*paid, Ev("in_transit", 64, "import_customs_released", "international")]
    assert customs(released) == {"export": "released", "import": "released", "duties": "paid"}


def test_any_arrival_order_gives_the_same_customs_state() -> None:
    expected = customs(CUSTOMS_JOURNEY)
    rng = random.Random(11)
    for _ in range(50):
        shuffled = CUSTOMS_JOURNEY + rng.sample(CUSTOMS_JOURNEY, 2)
        rng.shuffle(shuffled)
        assert customs(shuffled) == expected


def test_a_late_presented_scan_does_not_undo_a_hold_or_a_release() -> None:
    events = [
        Ev("exception", 1, "import_customs_held"),
        Ev("in_transit", 2, "import_customs_presented"),  # a re-scan at the same office
    ]
    assert customs(events)["import"] == "held"
    events = [
        Ev("in_transit", 1, "import_customs_released"),
        Ev("in_transit", 2, "import_customs_presented"),
    ]
    assert customs(events)["import"] == "released"
    # A hold after a release is a real new hold.
    events = [
        Ev("in_transit", 1, "import_customs_released"),
        Ev("exception", 2, "import_customs_held"),
    ]
    assert customs(events)["import"] == "held"


def test_progress_implies_releases_nobody_scanned() -> None:
    # Held at export, then it left the country: export customs let it go.
    left = [
        Ev("exception", 1, "export_customs_held"),
        Ev("in_transit", 9, "departed_origin_country"),
    ]
    assert customs(left)["export"] == "released"
    # Held at import, then out for delivery: import customs let it go.
    out = [
        Ev("exception", 1, "import_customs_held"),
        Ev("out_for_delivery", 9, None, "destination"),
    ]
    assert customs(out)["import"] == "released"
    # A destination-country scan alone does not: items wait in customs at sorting centres.
    hub = [
        Ev("exception", 1, "import_customs_held"),
        Ev("in_transit", 9, "arrived_hub", "destination"),
    ]
    assert customs(hub)["import"] == "held"
    # Duties still payable at delivery were collected at the door.
    door = [Ev("in_transit", 1, "duties_payable"), Ev("delivered", 9, None, "destination")]
    assert customs(door)["duties"] == "paid"


def test_no_customs_events_no_customs_state() -> None:
    assert customs([Ev("in_transit", 1, "picked_up", "origin")]) == {
        "export": None,
        "import": None,
        "duties": None,
    }
    assert CustomsState.from_dict(None) == CustomsState()
    state = CustomsState("released", "held", "payable")
    assert CustomsState.from_dict(state.as_dict()) == state


@pytest.mark.parametrize(
    ("status", "substatus", "module", "state", "expected"),
    [
        ("pending", None, None, CustomsState(), "Waiting for the carrier's first scan"),
        ("in_transit", "arrived_destination_country", "international", CustomsState(), "Waiting for import customs"),
        ("in_transit", None, "international", CustomsState(import_="presented"), "Waiting for import customs"),
        ("exception", "import_customs_held", "international", CustomsState(import_="held"), "Held by import customs: waiting for clearance"),
        ("in_transit", None, "international", CustomsState(import_="held", duties="payable"), "Duties or taxes to pay before delivery"),
        ("in_transit", None, "origin", CustomsState(export="presented"), "Waiting for export customs"),
        ("in_transit", "departed_origin_country", "international", CustomsState(export="released"), "Travelling to the destination country"),
        ("in_transit", None, "destination", CustomsState(), "On its way to the delivery address"),
        ("out_for_delivery", None, "destination", CustomsState(import_="released"), "Out for delivery: it should arrive today"),
        ("failed_attempt", "recipient_unavailable", "destination", CustomsState(), "Nobody was in: the carrier will try again or leave a notice"),
        ("delivered", None, "destination", CustomsState(duties="payable"), "Nothing more: the parcel was delivered"),
        ("exception", None, None, CustomsState(), "The carrier reported a problem and is looking into it"),
    ],
)  # fmt: skip
def test_next_step_in_plain_words(
    status: str, substatus: str | None, module: str | None, state: CustomsState, expected: str
) -> None:
    assert next_step(status, substatus, module, state) == expected

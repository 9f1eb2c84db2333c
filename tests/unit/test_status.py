import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.timeline.status import derive
from shared.taxonomy import Status

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Ev:
    status: str
    hours: float | None
    module: str | None = None
    substatus: str | None = None
    local: str | None = None
    sequence: int = 0

    @property
    def occurred_at(self) -> datetime | None:
        return None if self.hours is None else T0 + timedelta(hours=self.hours)

    @property
    def occurred_at_local(self) -> str | None:
        return self.local


JOURNEY = [
    Ev("info_received", 0, "origin"),
    Ev("in_transit", 5, "origin", "picked_up"),
    Ev("in_transit", 30, "international", "departed_origin_country"),
    Ev("in_transit", 60, "international", "import_customs_released"),
    Ev("out_for_delivery", 80, "destination"),
    Ev("delivered", 86, "destination"),
]


def test_no_events_is_pending() -> None:
    assert derive([]).status is Status.PENDING


def test_in_order_journey_ends_delivered_with_module_statuses() -> None:
    d = derive(JOURNEY)
    assert d.status is Status.DELIVERED
    assert d.module_status == {
        "origin": "in_transit",
        "international": "in_transit",
        "destination": "delivered",
    }
    assert d.last_event_at == T0 + timedelta(hours=86)


def test_any_arrival_order_and_duplicates_give_the_same_result() -> None:
    expected = derive(JOURNEY)
    rng = random.Random(7)
    for _ in range(50):
        shuffled = JOURNEY + rng.sample(JOURNEY, 3)
        rng.shuffle(shuffled)
        assert derive(shuffled) == expected


def test_late_older_scan_does_not_undo_delivery() -> None:
    # The delivery arrived first; an origin scan that happened earlier comes in afterwards.
    assert (
        derive([Ev("delivered", 50, "destination"), Ev("in_transit", 10)]).status
        is Status.DELIVERED
    )


def test_delivered_stamped_before_out_for_delivery_still_wins() -> None:
    events = [Ev("delivered", 10, "destination"), Ev("out_for_delivery", 11, "destination")]
    assert derive(events).status is Status.DELIVERED


def test_pre_transit_notice_after_movement_does_not_go_back() -> None:
    events = [Ev("in_transit", 1), Ev("info_received", 2)]
    assert derive(events).status is Status.IN_TRANSIT


def test_latest_non_terminal_wins_otherwise() -> None:
    events = [
        Ev("in_transit", 1),
        Ev("exception", 3, substatus="import_customs_held"),
        Ev("in_transit", 2),
    ]
    d = derive(events)
    assert d.status is Status.EXCEPTION and d.substatus == "import_customs_held"


def test_unknown_instant_falls_back_to_wall_time_and_sequence() -> None:
    events = [
        Ev("in_transit", None, local="2024-03-01T10:00:00", sequence=1),
        Ev("out_for_delivery", None, local="2024-03-01T10:00:00", sequence=2),
    ]
    assert derive(events).status is Status.OUT_FOR_DELIVERY
    assert derive(events).last_event_at is None


def test_returned_after_delivery_attempts() -> None:
    events = [Ev("failed_attempt", 1, "destination"), Ev("returned", 5, "destination")]
    assert derive(events).status is Status.RETURNED

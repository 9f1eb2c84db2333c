"""The poll schedule: intervals by status, substatus and module; token buckets; re-detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.carriers.models import PollTarget
from services.carriers.scheduler import (
    MAX_NOT_FOUND,
    CarrierLimits,
    carrier_limits,
    grant,
    interval_factor,
    is_finished,
    next_candidate,
    next_poll,
    parse_carrier_map,
    refill,
    throttled,
)
from shared.errors import InvalidInput
from shared.settings import Settings

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BASE = 3600.0


def target(
    status: str = "in_transit",
    substatus: str | None = None,
    module: str | None = None,
    not_found: int = 0,
    delivered_at: datetime | None = None,
) -> PollTarget:
    return PollTarget(
        carrier="usps",
        tracking_number="RR123456785CN",
        status=status,
        substatus=substatus,
        module=module,
        not_found=not_found,
        delivered_at=delivered_at,
    )


def hours_until_next(t: PollTarget) -> float:
    return (next_poll(t, NOW, BASE, 1.0, rng=lambda: 0.5) - NOW).total_seconds() / 3600


def test_near_hand_offs_more_often_mid_linehaul_rarely() -> None:
    linehaul = hours_until_next(target(substatus="departed_origin_country", module="international"))
    arrived = hours_until_next(
        target(substatus="arrived_destination_country", module="international")
    )
    handed = hours_until_next(target(substatus="handed_over", module="destination"))
    last_mile = hours_until_next(target("out_for_delivery", module="destination"))
    origin = hours_until_next(target(substatus="picked_up", module="origin"))
    assert linehaul == 3.0 and origin == 1.0
    assert arrived == handed == last_mile == 0.25
    assert linehaul > origin > arrived


def test_module_decides_when_the_substatus_does_not() -> None:
    assert (
        interval_factor("in_transit", None, "international")
        > interval_factor("in_transit", None, "origin")
        > interval_factor("in_transit", None, "destination")
    )
    assert interval_factor("in_transit", None, None) == 1.0
    # A terminal status wins over whatever substatus came with it.
    assert interval_factor("delivered", "handed_over", "destination") == 4.0


def test_jitter_stays_within_ten_percent_and_the_floor_holds() -> None:
    t = target()
    low = next_poll(t, NOW, BASE, 1.0, rng=lambda: 0.0) - NOW
    high = next_poll(t, NOW, BASE, 1.0, rng=lambda: 0.999999) - NOW
    assert timedelta(hours=0.9) <= low < high <= timedelta(hours=1.1)
    assert next_poll(t, NOW, 0.001, 5.0) - NOW == timedelta(seconds=5)


def test_not_found_backs_off_and_finally_stops() -> None:
    assert hours_until_next(target(not_found=3)) > hours_until_next(target(not_found=1)) > 1.0
    assert hours_until_next(target(not_found=20)) == 8.0
    assert is_finished(target(not_found=MAX_NOT_FOUND), NOW, 86400)


def test_stop_after_delivery_plus_grace() -> None:
    delivered = target("delivered", delivered_at=NOW - timedelta(hours=2))
    assert not is_finished(delivered, NOW, 3 * 3600)
    assert is_finished(delivered, NOW, 3600)
    assert not is_finished(target(), NOW, 0)


# --- token buckets --------------------------------------------------------------------------------

LIMITS = CarrierLimits(rate_per_s=0.5, burst=4, batch=3)


def test_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    assert refill(0, NOW, NOW + timedelta(seconds=4), LIMITS) == 2.0
    assert refill(0, NOW, NOW + timedelta(hours=1), LIMITS) == 4.0
    assert refill(3.5, NOW, NOW - timedelta(seconds=10), LIMITS) == 3.5  # clocks going back


def test_grant_is_capped_by_tokens_and_batch() -> None:
    assert grant(4.0, LIMITS) == 3
    assert grant(1.9, LIMITS) == 1
    assert grant(0.5, LIMITS) == 0
    assert grant(-10, LIMITS) == 0


def test_a_429_empties_the_bucket_for_its_retry_after() -> None:
    tokens = throttled(4.0, 30, LIMITS)
    assert tokens == -15.0
    assert grant(refill(tokens, NOW, NOW + timedelta(seconds=29), LIMITS), LIMITS) == 0
    assert grant(refill(tokens, NOW, NOW + timedelta(seconds=32), LIMITS), LIMITS) == 1


def test_limits_come_from_settings_with_per_carrier_overrides() -> None:
    settings = Settings(
        poll_rate_per_s=10, poll_burst=20, poll_batch=50,
        poll_carrier_rates="dhl=0.2, ups=5", poll_carrier_batches="usps=35",
    )  # fmt: skip
    limits = carrier_limits(settings, ["dhl", "ups", "usps", "fedex"])
    assert limits["dhl"] == CarrierLimits(0.2, 20, 50)
    assert limits["ups"].rate_per_s == 5 and limits["usps"].batch == 35
    assert limits["fedex"] == CarrierLimits(10, 20, 50)


@pytest.mark.parametrize("text", ["dhl", "dhl=", "dhl=fast", "=3", "dhl=-1", "dhl=0"])
def test_malformed_carrier_maps_are_refused_with_the_setting_name(text: str) -> None:
    with pytest.raises(InvalidInput, match="poll_carrier_rates"):
        parse_carrier_map(text, "poll_carrier_rates")
    assert parse_carrier_map("", "x") == {} and parse_carrier_map(" dhl=1 , ", "x") == {"dhl": 1}


# --- re-detection -------------------------------------------------------------------------------


def test_next_candidate_skips_tried_and_unpollable_carriers() -> None:
    number = "RR123456785CN"  # china-post, then upu, then yanwen
    everything = {"china-post", "upu", "yanwen"}
    first = next_candidate(number, {"china-post"}, everything)
    assert first is not None and first.carrier == "upu"
    second = next_candidate(number, {"china-post"}, {"yanwen"})
    assert second is not None and second.carrier == "yanwen"
    assert next_candidate(number, everything, everything) is None
    fedex = next_candidate("986578788855", {"fedex"}, {"dhl", "fedex"})
    assert fedex is not None and fedex.carrier == "dhl"

"""When to poll a number next, and how much a carrier may be asked: pure functions of state (no
I/O; the clock is passed in).

The interval follows the leg's status, substatus and module: often where something is about to
change hands (arrival in the destination country, a hand-off, customs, the last mile), rarely in
the middle of the linehaul (departed the origin country, nothing to see until it lands).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.carriers.models import PollTarget
from shared.errors import InvalidInput
from shared.numbers import Candidate, detect
from shared.settings import Settings
from shared.taxonomy import Module, Status, Substatus

S, U = Status, Substatus

# Statuses that decide the interval whatever the substatus says.
_STATUS_FACTOR: dict[str, float] = {
    S.OUT_FOR_DELIVERY: 0.25,
    S.FAILED_ATTEMPT: 0.5,
    S.AVAILABLE_FOR_PICKUP: 1.0,
    S.EXCEPTION: 0.5,
    S.DELIVERED: 4.0,
    S.RETURNED: 4.0,
}
_SUBSTATUS_FACTOR: dict[str, float] = {
    U.ARRIVED_DESTINATION_COUNTRY: 0.25,  # the destination carrier takes over soon
    U.HANDED_OVER: 0.25,
    U.IMPORT_CUSTOMS_PRESENTED: 0.5,
    U.IMPORT_CUSTOMS_RELEASED: 0.25,
    U.IMPORT_CUSTOMS_HELD: 1.0,  # waits on paperwork, often for days
    U.DUTIES_PAYABLE: 1.0,
    U.EXPORT_CUSTOMS_PRESENTED: 0.5,
    U.EXPORT_CUSTOMS_RELEASED: 0.5,
    U.DEPARTED_ORIGIN_COUNTRY: 3.0,  # mid-linehaul: nothing until it lands
}
_MODULE_FACTOR: dict[str, float] = {
    Module.ORIGIN: 1.0,
    Module.INTERNATIONAL: 1.5,
    Module.DESTINATION: 0.5,
}
MAX_NOT_FOUND = 30


def interval_factor(status: str, substatus: str | None, module: str | None) -> float:
    """How many base intervals until the next poll, from the leg's state."""
    if status in _STATUS_FACTOR:
        return _STATUS_FACTOR[status]
    if substatus in _SUBSTATUS_FACTOR:
        return _SUBSTATUS_FACTOR[substatus]
    return _MODULE_FACTOR.get(module or "", 1.0)


def next_poll(
    target: PollTarget,
    now: datetime,
    base_s: float,
    min_s: float,
    rng: Callable[[], float] = random.random,
) -> datetime:
    """A successful poll: the next one by state, with ±10 % jitter so polls do not bunch up."""
    factor = interval_factor(target.status, target.substatus, target.module)
    if target.not_found:
        factor *= min(8.0, 1.5**target.not_found)
    seconds = max(min_s, base_s * factor * (0.9 + 0.2 * rng()))
    return now + timedelta(seconds=seconds)


def is_finished(target: PollTarget, now: datetime, grace_s: float) -> bool:
    """Stop after delivery (or return) plus a grace period, or after too many 'not found'."""
    if target.not_found >= MAX_NOT_FOUND:
        return True
    if target.delivered_at is None:
        return False
    return now - target.delivered_at >= timedelta(seconds=grace_s)


# --- rate limits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarrierLimits:
    rate_per_s: float
    burst: float
    batch: int


def parse_carrier_map(text: str, name: str) -> dict[str, float]:
    """``'dhl=0.2, ups=5'`` → ``{'dhl': 0.2, 'ups': 5.0}``; a malformed entry is refused."""
    out: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        carrier, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not carrier.strip() or not number > 0:
            raise InvalidInput(f"{name}: expected carrier=positive number, got {item!r}")
        out[carrier.strip()] = number
    return out


def carrier_limits(settings: Settings, carriers: Collection[str]) -> dict[str, CarrierLimits]:
    rates = parse_carrier_map(settings.poll_carrier_rates, "poll_carrier_rates")
    batches = parse_carrier_map(settings.poll_carrier_batches, "poll_carrier_batches")
    return {
        c: CarrierLimits(
            rate_per_s=rates.get(c, settings.poll_rate_per_s),
            burst=max(1.0, settings.poll_burst),
            batch=max(1, int(batches.get(c, settings.poll_batch))),
        )
        for c in carriers
    }


def refill(tokens: float, refilled_at: datetime, now: datetime, limits: CarrierLimits) -> float:
    """A token bucket's content now; it may be negative after a carrier asked us to back off."""
    elapsed = max(0.0, (now - refilled_at).total_seconds())
    return min(limits.burst, tokens + elapsed * limits.rate_per_s)


def grant(tokens: float, limits: CarrierLimits) -> int:
    """How many numbers may be polled now."""
    return max(0, min(limits.batch, math.floor(tokens)))


def throttled(tokens: float, retry_after_s: float, limits: CarrierLimits) -> float:
    """The bucket after a 429: empty for ``retry_after_s``, for every number of that carrier."""
    return min(tokens, -retry_after_s * limits.rate_per_s)


# --- re-detection -------------------------------------------------------------------------------


def next_candidate(
    number: str, tried: Collection[str], pollable: Collection[str]
) -> Candidate | None:
    """The best-ranked carrier for ``number`` not tried yet that we can poll."""
    return next(
        (c for c in detect(number) if c.carrier not in tried and c.carrier in pollable), None
    )

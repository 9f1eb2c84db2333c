"""When to poll a number next: pure functions of its state (no I/O, the clock is passed in)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from services.carriers.models import PollTarget

# Relative poll frequency by status: near hand-offs and the last mile more often.
_STATUS_FACTOR = {
    "pending": 1.0,
    "info_received": 1.0,
    "in_transit": 1.0,
    "out_for_delivery": 0.25,
    "failed_attempt": 0.5,
    "available_for_pickup": 1.0,
    "exception": 0.5,
    "delivered": 4.0,
    "returned": 4.0,
}
MAX_NOT_FOUND = 30


def next_poll(
    target: PollTarget,
    now: datetime,
    base_s: float,
    min_s: float,
    rng: Callable[[], float] = random.random,
) -> datetime:
    """A successful poll: the next one by status, with ±10 % jitter so polls do not bunch up."""
    factor = _STATUS_FACTOR.get(target.status, 1.0)
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

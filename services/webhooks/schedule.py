"""The retry schedule of Standard Webhooks, with jitter, a scale for tests and ``Retry-After``."""

from __future__ import annotations

import random
from datetime import datetime
from email.utils import parsedate_to_datetime

# Delay before attempt n+1: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
SCHEDULE_S: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = len(SCHEDULE_S)
SLOW_DOWN = frozenset({429, 502, 503, 504})  # statuses whose Retry-After we honour
MAX_RETRY_AFTER_S = SCHEDULE_S[-1]
JITTER = 0.2


def next_delay(
    attempts_made: int,
    *,
    scale: float = 1.0,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` failed ones; None when exhausted.

    ``retry_after_s`` (the receiver's own request) is a floor and is not scaled, capped at 24 h.
    """
    if attempts_made >= MAX_ATTEMPTS:
        return None
    spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    delay = SCHEDULE_S[attempts_made] * scale * spread
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())

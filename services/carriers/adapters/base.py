"""What every carrier adapter provides: a pure ``parse`` from a carrier payload to canonical events.

``parse`` does no I/O and reads no clock. It never raises for a bad payload: it returns per-number
errors (``ParseError``) instead, so one bad answer cannot crash a loop. A payload that is not even
the carrier's format yields an error with ``tracking_number=None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from shared.schema import TrackingEvent
from shared.taxonomy import Source


@dataclass(frozen=True)
class ParseError:
    tracking_number: str | None
    code: str  # "not_found", "malformed", "carrier_error", ...
    message: str


@dataclass(frozen=True)
class ParseResult:
    events: list[TrackingEvent] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)


class Adapter(Protocol):
    carrier: str
    name: str

    def parse(
        self,
        payload: bytes,
        *,
        requested: str | None = None,
        raw_ref: str | None = None,
        source: Source = Source.POLL,
        http_status: int = 200,
    ) -> ParseResult: ...

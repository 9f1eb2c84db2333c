"""What every carrier adapter provides: a pure ``parse`` from a carrier payload to canonical events.

``parse`` does no I/O and reads no clock. It never raises for a bad payload: it returns per-number
errors (``ParseError``) instead, so one bad answer cannot crash a loop. A payload that is not even
the carrier's format yields an error with ``tracking_number=None``.
"""

from __future__ import annotations

from collections.abc import Callable
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


Parse = Callable[[bytes, str | None, str | None, Source, int], ParseResult]


def guarded(
    parse: Parse,
    payload: bytes,
    requested: str | None,
    raw_ref: str | None,
    source: Source,
    http_status: int,
) -> ParseResult:
    """``parse`` behind the boundary every polled adapter keeps: no payload may crash the caller's
    loop, so whatever ``parse`` raises becomes a ``malformed`` error for the number asked."""
    try:
        return parse(payload, requested, raw_ref, source, http_status)
    except Exception as exc:  # noqa: BLE001 - the boundary itself
        message = f"unexpected payload: {type(exc).__name__}: {exc}"
        return ParseResult(errors=[ParseError(requested, "malformed", message)])

"""Carrier-neutral scripts, rendered by each carrier sandbox in that carrier's own shape.

A ``CarrierScript`` is what happens to one parcel at one carrier: ``Scan`` steps, each an offset
from the script's start, a code, a text and a place. ``code`` is the carrier's own code where the
carrier has codes; the postal sandboxes also accept a UPU EMSEVT code (``EMA`` .. ``EMI``) and
translate it into their own vocabulary, so one postal journey can be played by several posts.
``zone`` (IANA) is where local wall times come from; without it the sandbox writes UTC.

Each ``services.simulator.carriers.<module>.router(state)`` serves the carrier's real path and
auth and renders the scans that have happened by ``state.clock()`` (newest or oldest first, and
with the timestamp style, as that carrier does). ``ScriptState`` is what the routers share:
scripts by carrier and number (plus aliases, for carriers that answer with another number),
demo credentials per carrier, and queued failures or timed outages so a test can make a sandbox
answer 429 or 5xx (``served_failures`` counts what was served).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.responses import Response

__all__ = [
    "UPU_CODES",
    "CarrierScript",
    "Failure",
    "Outage",
    "Scan",
    "ScriptState",
    "failure_response",
    "office_code",
    "utcnow",
]

# The UPU EMSEVT codes a script may use as carrier-neutral steps.
UPU_CODES = frozenset(
    "EMA EMB EXA EXB EXC EXD EXX EMC EMJ EMK EMD EDA EDB EME EDC EMF EDD EDE EMG EDF EDG EDH "
    "EMH EMI EDX".split()
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Scan:
    offset: timedelta
    code: str
    text: str
    city: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    zone: str | None = None  # IANA zone of the place; None: the sandbox writes UTC

    def local_time(self, start: datetime) -> datetime:
        """The scan's instant as an aware time in the place's zone (UTC without a zone)."""
        instant = start + self.offset
        return instant.astimezone(ZoneInfo(self.zone) if self.zone else UTC)


@dataclass
class CarrierScript:
    tracking_number: str  # the number the carrier answers with
    scans: list[Scan]  # journey order
    started_at: datetime  # aware; a scan happens at started_at + offset

    def visible(self, now: datetime) -> list[tuple[Scan, datetime]]:
        """Scans that have happened by ``now``, oldest first, with their local aware times."""
        done = [s for s in self.scans if self.started_at + s.offset <= now]
        return [(s, s.local_time(self.started_at)) for s in sorted(done, key=lambda s: s.offset)]


@dataclass(frozen=True)
class Failure:
    status: int  # 429 or 5xx
    retry_after: int | None = None


@dataclass
class Outage:
    """A carrier failing every request from ``since`` until ``until`` (None: open-ended), at most
    ``remaining`` requests when a count is given."""

    failure: Failure
    until: datetime | None = None
    remaining: int | None = None
    since: datetime | None = None

    def active(self, now: datetime) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.since is not None and now < self.since:
            return False
        return self.until is None or now < self.until


@dataclass
class ScriptState:
    clock: Callable[[], datetime] = utcnow
    credentials: dict[str, Mapping[str, str]] = field(default_factory=dict)
    _scripts: dict[tuple[str, str], CarrierScript] = field(default_factory=dict)
    _failures: dict[str, deque[Failure]] = field(default_factory=dict)
    _outages: dict[str, Outage] = field(default_factory=dict)
    served_failures: Counter[str] = field(default_factory=Counter)

    def add(self, carrier: str, script: CarrierScript, *aliases: str) -> None:
        for number in (script.tracking_number, *aliases):
            self._scripts[(carrier, number.upper())] = script

    def find(self, carrier: str, number: str) -> CarrierScript | None:
        return self._scripts.get((carrier, number.strip().upper()))

    def visible(self, script: CarrierScript) -> list[tuple[Scan, datetime]]:
        return script.visible(self.clock())

    def credentials_for(self, carrier: str, default: Mapping[str, str]) -> Mapping[str, str]:
        return self.credentials.get(carrier, default)

    def fail(
        self, carrier: str, status: int, count: int = 1, retry_after: int | None = None
    ) -> None:
        """Answer the next ``count`` requests to ``carrier`` with ``status``."""
        queue = self._failures.setdefault(carrier, deque())
        queue.extend(Failure(status, retry_after) for _ in range(count))

    def set_outage(
        self,
        carrier: str,
        status: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        count: int | None = None,
        retry_after: int | None = None,
    ) -> Outage:
        """Fail every request to ``carrier`` from ``since`` until ``until`` and/or for ``count``
        requests (none of them: until ``clear_outage``); replaces the carrier's previous outage."""
        outage = Outage(Failure(status, retry_after), until, count, since)
        self._outages[carrier] = outage
        return outage

    def clear_outage(self, carrier: str) -> None:
        self._outages.pop(carrier, None)
        self._failures.pop(carrier, None)

    def take_failure(self, carrier: str) -> Failure | None:
        """The failure this request gets: queued ones first, then an active outage."""
        queue = self._failures.get(carrier)
        failure = queue.popleft() if queue else self._outage_failure(carrier)
        if failure is not None:
            self.served_failures[carrier] += 1
        return failure

    def _outage_failure(self, carrier: str) -> Failure | None:
        outage = self._outages.get(carrier)
        if outage is None or not outage.active(self.clock()):
            return None
        if outage.remaining is not None:
            outage.remaining -= 1
        return outage.failure


def office_code(scan: Scan) -> str | None:
    """A six-letter IMPC-style office code for a scan's place (``CN`` + ``SHE`` + ``A``)."""
    letters = "".join(ch for ch in (scan.city or "").upper() if "A" <= ch <= "Z")
    if not scan.country or len(letters) < 3:
        return None
    return f"{scan.country.upper()}{letters[:3]}A"


def failure_response(failure: Failure, body: bytes, media_type: str) -> Response:
    """The carrier's own error body with the failure's status (and ``Retry-After`` for 429)."""
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
    return Response(body, status_code=failure.status, headers=headers, media_type=media_type)

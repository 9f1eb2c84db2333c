"""Canada Post Tracking v2 (``GET /vis/track/pin/{pin}/detail``, XML): canonical events.

Quirks handled (reference/carrier-contracts.md §0 and §8, Canada Post):
- XML with a namespace (``application/vnd.cpc.track-v2+xml``), read through defusedxml only;
- ``significant-events/occurrence`` events are newest first; duplicates are dropped;
- ``event-identifier`` is a string with leading zeros kept (``0174``); ``1496`` is delivered and
  ``20`` is "signature image recorded" (after the delivery); other codes are read from the text;
- local ``event-date`` + ``event-time`` (``HH:MM:SS``) with the zone as an abbreviation
  (``EST``, ``EDT``, ``PST``, ``NDT``... and the French ``HNE``, ``HAE``...), turned into the stated
  offset; an unknown abbreviation leaves the instant to the province when it keeps one zone (AB,
  MB, NS, NB, PE, YT), else unknown (Ontario, Quebec and BC have several);
- a "delivered" scan can sit before "out for delivery" in time: the order follows the instants,
  and the status derivation keeps the delivery (terminal statuses are not undone);
- ``pin`` is the number answered and is used; ``return-pin`` names the number of the return:
  a ``handoff`` (evidence ``return-pin``) on the return event, else on the newest;
- ``signatory-name`` is never copied and is redacted wherever a text repeats it; customer
  numbers, references and the destination postal code are not read;
- errors: ``<messages><message><code>004</code>`` (leading zeros; 004 = no PIN history = not
  found), whatever the HTTP status.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from services.carriers.adapters.base import ParseResult, guarded
from services.carriers.adapters.postal import (
    Draft,
    Redactor,
    Route,
    child_text,
    children,
    country_code,
    failed,
    finish,
    load_xml,
    make_location,
    read_events,
    split_local,
    tag,
)
from shared.errors import InvalidInput
from shared.schema import Handoff, Location
from shared.taxonomy import Source, Status, Substatus
from shared.timeparse import resolve

CARRIER = "canada-post"

S, U = Status, Substatus
# fmt: off
EVENT_CODES: dict[str, tuple[Status, Substatus | None]] = {
    "1496": (S.DELIVERED, None),  # item successfully delivered
    "20": (S.DELIVERED, None),    # signature image recorded for online viewing
}
TEXT_RULES: tuple[tuple[str, Status, Substatus | None], ...] = (
    (r"delivered to sender|returned to sender and delivered", S.RETURNED, None),
    (r"return(?:ed|ing)? to sender|being returned", S.EXCEPTION, U.RETURNING),
    (r"electronic information submitted|shipping label created", S.INFO_RECEIVED, None),
    (r"duties|taxes|customs fees", S.EXCEPTION, U.DUTIES_PAYABLE),
    (r"(?:released|cleared) by (?:the )?(?:canada border services agency|cbsa|customs)",
     S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED),
    (r"held by (?:the )?(?:canada border services agency|cbsa|customs)", S.EXCEPTION,
     U.IMPORT_CUSTOMS_HELD),
    (r"canada border services agency|cbsa|customs", S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),
    (r"arrived in canada", S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY),
    (r"left canada|departed canada", S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY),
    (r"incorrect address|address (?:is )?(?:incomplete|incorrect)", S.EXCEPTION, U.ADDRESS_ISSUE),
    (r"refused", S.EXCEPTION, U.REFUSED),
    (r"damaged", S.EXCEPTION, U.DAMAGED),
    (r"attempted|notice card|could not be delivered", S.FAILED_ATTEMPT, None),
    (r"available for pick ?up|ready for pick ?up", S.AVAILABLE_FOR_PICKUP, None),
    (r"out for delivery", S.OUT_FOR_DELIVERY, None),
    (r"(?<!un)delivered|signature image recorded", S.DELIVERED, None),
    (r"accepted at|picked up by canada post", S.IN_TRANSIT, U.PICKED_UP),
    (r"arrived|received", S.IN_TRANSIT, U.ARRIVED_HUB),
    (r"departed|in transit to", S.IN_TRANSIT, U.DEPARTED_HUB),
)
ZONES: dict[str, str] = {
    "NST": "-03:30", "NDT": "-02:30", "AST": "-04:00", "ADT": "-03:00", "EST": "-05:00",
    "EDT": "-04:00", "CST": "-06:00", "CDT": "-05:00", "MST": "-07:00", "MDT": "-06:00",
    "PST": "-08:00", "PDT": "-07:00", "GMT": "+00:00", "UTC": "+00:00",
    "HNT": "-03:30", "HAT": "-02:30", "HNA": "-04:00", "HAA": "-03:00", "HNE": "-05:00",
    "HAE": "-04:00", "HNC": "-06:00", "HAC": "-05:00", "HNR": "-07:00", "HAR": "-06:00",
    "HNP": "-08:00", "HAP": "-07:00",
}
PROVINCES = frozenset({"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"})
# fmt: on
_TEXT = tuple((re.compile(p, re.IGNORECASE), st, sub) for p, st, sub in TEXT_RULES)
_NOT_FOUND_CODES = frozenset({"004"})


class CanadaPostAdapter:
    carrier = CARRIER
    name = "Canada Post (Tracking v2)"

    def parse(
        self,
        payload: bytes,
        *,
        requested: str | None = None,
        raw_ref: str | None = None,
        source: Source = Source.POLL,
        http_status: int = 200,
    ) -> ParseResult:
        return guarded(_parse, payload, requested, raw_ref, source, http_status)


def _parse(
    payload: bytes, requested: str | None, raw_ref: str | None, source: Source, http_status: int
) -> ParseResult:
    try:
        root = load_xml(payload)
    except InvalidInput as exc:
        if http_status >= 400:  # a 401 or 5xx can come as an HTML page
            code = "not_found" if http_status == 404 else "carrier_error"
            return failed(requested, code, f"HTTP {http_status}: {exc}")
        return failed(requested, "malformed", str(exc))
    if tag(root) == "messages":
        return _messages(root, requested, http_status)
    if tag(root) != "tracking-detail":
        return failed(requested, "malformed", f"expected <tracking-detail>, got <{tag(root)[:40]}>")
    number = child_text(root, "pin") or (requested or "")
    if not number:
        return failed(requested, "malformed", "no <pin> in the answer")
    occurrences = [
        o for group in children(root, "significant-events") for o in children(group, "occurrence")
    ]
    if not occurrences:
        return failed(number, "not_found", "no significant events yet")
    redact = Redactor(child_text(o, "signatory-name") for o in occurrences)
    drafts, errors = read_events(
        occurrences,
        lambda occurrence, position: _read_occurrence(occurrence, position, redact),
        number,
        "occurrence",
    )
    return finish(
        CARRIER,
        number,
        drafts,
        raw_ref=raw_ref,
        source=source,
        newest_first=True,
        route=Route(),
        errors=errors,
        handoff=_return_handoff(root, number),
        handoff_at=lambda d: d.substatus is U.RETURNING or d.status is S.RETURNED,
    )


def _messages(root: Element, requested: str | None, http_status: int) -> ParseResult:
    messages = children(root, "message") or [root]
    codes = [child_text(m, "code") for m in messages]
    summary = "; ".join(
        f"{c} {child_text(m, 'description')}".strip() for c, m in zip(codes, messages, strict=True)
    )
    not_found = any(c in _NOT_FOUND_CODES for c in codes) or "no pin history" in summary.lower()
    code = "not_found" if not_found else "carrier_error"
    return failed(requested, code, f"HTTP {http_status}: {summary or 'error without a message'}")


def _read_occurrence(occurrence: Element, position: int, redact: Redactor) -> Draft:
    date, clock = child_text(occurrence, "event-date"), child_text(occurrence, "event-time")
    if not date:
        raise InvalidInput("occurrence has no <event-date>")
    zone = child_text(occurrence, "event-time-zone").upper()
    naive, _ = split_local(f"{date}T{clock or '00:00:00'}")
    location = _location(occurrence, redact)
    country, region = (location.country, location.region) if location else (None, None)
    time = resolve(naive, ZONES.get(zone), country, region=region)
    code = child_text(occurrence, "event-identifier")
    description = redact(child_text(occurrence, "event-description"))
    status, substatus = _classify(code, description)
    return Draft(
        position=position,
        raw_timestamp=" ".join(p for p in (date, clock, zone) if p),
        time=time,
        status=status,
        substatus=substatus,
        module=None,
        carrier_code=code or None,
        description=description,
        location=location,
    )


def _classify(code: str, description: str) -> tuple[Status, Substatus | None]:
    if code in EVENT_CODES:
        return EVENT_CODES[code]
    for pattern, status, substatus in _TEXT:
        if pattern.search(description):
            return status, substatus
    return Status.IN_TRANSIT, None


def _location(occurrence: Element, redact: Redactor) -> Location | None:
    site = redact(child_text(occurrence, "event-site"))
    province = child_text(occurrence, "event-province").upper()
    retail = redact(child_text(occurrence, "event-retail-name"))
    if province in PROVINCES:
        return make_location(
            city=site or None, region=province, country="CA", facility=retail or None
        )
    country = country_code(site)
    if country is not None:
        return make_location(country=country)
    return make_location(city=site or None, region=province or None, facility=retail or None)


def _return_handoff(root: Element, number: str) -> Handoff | None:
    return_pin = child_text(root, "return-pin")
    if not return_pin or return_pin == number:
        return None
    return Handoff(
        carrier=CARRIER, tracking_number=return_pin, evidence="return-pin", confidence=0.9
    )

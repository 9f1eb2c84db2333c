"""Royal Mail Tracking API v2 (``GET /mailpieces/v2/{mailPieceId}/events``): canonical events.

Quirks handled (reference/carrier-contracts.md §8, Royal Mail):
- ``mailPieces`` is one object for the events operation and an array for the summary one;
- ``eventDateTime`` is ISO 8601 with an offset (``+01:00``; also accepted: ``+0100``, 7-digit
  fractions); an offset-less value is a wall time, given an instant only at a UK site;
- ``eventCode`` is ``EVxxx`` (``EVKSP`` delivered and signed, ``EVGPD`` due to be delivered today,
  ``EVKNA`` attempted, no answer, ``EVNMI`` mis-sort...); events without a known code are read
  from their text, UPU wording included ("Departure from outward office of exchange");
- ``locationName`` is a site ("Stafford DO", "Heathrow Worldwide DC"), a country name, or absent;
- the number answered (``summary.oneDBarcode``, else ``mailPieceId``) is used, not the one asked;
- events are newest first; duplicates are dropped;
- errors: ``{httpCode, httpMessage, moreInformation, errors[{errorCode, errorDescription,
  errorCause, errorResolution}]}`` (``E1142`` barcode not recognised = not found), and per-piece
  ``error`` objects inside HTTP 200;
- ``signature.recipientName`` is never copied and is redacted wherever a text repeats it;
- ``summary.internationalPostalProvider`` names the post that delivers abroad: a ``handoff`` of
  the same barcode to that post (evidence ``summary.internationalPostalProvider``).
"""

from __future__ import annotations

import re
from typing import Any

from services.carriers.adapters.base import ParseResult, guarded
from services.carriers.adapters.postal import (
    Draft,
    Redactor,
    Route,
    arr,
    code_text,
    country_code,
    failed,
    finish,
    load_json,
    make_location,
    merge,
    obj,
    read_events,
    resolve_text,
    text,
)
from services.carriers.adapters.upu import classify_postal
from shared.errors import InvalidInput
from shared.schema import Handoff, Location
from shared.taxonomy import Source, Status, Substatus

CARRIER = "royal-mail"

S, U = Status, Substatus
# fmt: off
EVENT_CODES: dict[str, tuple[Status, Substatus | None]] = {
    "EVAIE": (S.INFO_RECEIVED, None), "EVAIP": (S.INFO_RECEIVED, None),
    "EVPPA": (S.IN_TRANSIT, U.PICKED_UP), "EVOCO": (S.IN_TRANSIT, U.PICKED_UP),
    "EVOAC": (S.IN_TRANSIT, U.ARRIVED_HUB), "EVDAV": (S.IN_TRANSIT, U.ARRIVED_HUB),
    "EVIMC": (S.IN_TRANSIT, U.ARRIVED_HUB), "EVDAC": (S.IN_TRANSIT, U.ARRIVED_HUB),
    "EVORI": (S.IN_TRANSIT, U.ARRIVED_HUB), "EVODO": (S.IN_TRANSIT, U.DEPARTED_HUB),
    "EVNMI": (S.IN_TRANSIT, U.DELAYED), "EVNRT": (S.IN_TRANSIT, U.DELAYED),
    "EVGPD": (S.OUT_FOR_DELIVERY, None),
    "EVKNA": (S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE), "EVKNR": (S.FAILED_ATTEMPT, None),
    "EVNSR": (S.IN_TRANSIT, None), "EVNDA": (S.AVAILABLE_FOR_PICKUP, None),
    "EVKSP": (S.DELIVERED, None), "EVKSF": (S.DELIVERED, None), "EVKOP": (S.DELIVERED, None),
}
TEXT_RULES: tuple[tuple[str, Status, Substatus | None], ...] = (
    (r"return(?:ed|ing)? to sender", S.EXCEPTION, U.RETURNING),
    (r"(?:fee|charge|duty|vat) (?:to pay|due)|customs charge", S.EXCEPTION, U.DUTIES_PAYABLE),
    (r"held by customs|customs hold", S.EXCEPTION, U.IMPORT_CUSTOMS_HELD),
    (r"released (?:from|by) customs|cleared (?:by )?customs|customs cleared", S.IN_TRANSIT,
     U.IMPORT_CUSTOMS_RELEASED),
    (r"customs", S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),
    (r"(?:left|leaving|despatched from) the uk|on its way to the destination country",
     S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY),
    (r"(?:arrived|received) in the uk", S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY),
    (r"attempted|we called|something for you", S.FAILED_ATTEMPT, None),
    (r"ready (?:for|to) collect|available for collection", S.AVAILABLE_FOR_PICKUP, None),
    (r"out for delivery|due to be delivered today", S.OUT_FOR_DELIVERY, None),
    (r"(?<!un)delivered", S.DELIVERED, None),
    (r"received|arrived", S.IN_TRANSIT, U.ARRIVED_HUB),
    (r"despatched|forwarded", S.IN_TRANSIT, U.DEPARTED_HUB),
)
# Carrier ids of the posts ``internationalPostalProvider`` can name (title or URL).
PROVIDERS: tuple[tuple[str, str], ...] = (
    (r"united states postal|usps", "usps"), (r"la poste|colissimo|laposte", "la-poste"),
    (r"australia post|auspost", "australia-post"), (r"canada post|canadapost", "canada-post"),
    (r"china post|chinapost|ems\.com\.cn", "china-post"),
)
# fmt: on
_TEXT = tuple((re.compile(p, re.IGNORECASE), st, sub) for p, st, sub in TEXT_RULES)
_PROVIDERS = tuple((re.compile(p, re.IGNORECASE), carrier) for p, carrier in PROVIDERS)
_UK_SITE = re.compile(
    r"\b(?:DO|MC|DC|Delivery Office|Mail Cent(?:re|er)|Processing Cent(?:re|er)|Hub|"
    r"Customer Service Point|Post Office|Parcelshop|Worldwide DC|Gateway|IMC)\b",
    re.IGNORECASE,
)
_NOT_FOUND = re.compile(r"E1142|not (?:be )?recogni[sz]ed|cannot be located|not found", re.I)


class RoyalMailAdapter:
    carrier = CARRIER
    name = "Royal Mail (Tracking API v2)"

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
        doc = load_json(payload)
    except InvalidInput as exc:
        code = (
            ("not_found" if http_status == 404 else "carrier_error")
            if http_status >= 400
            else "malformed"
        )
        return failed(requested, code, str(exc) if code == "malformed" else f"HTTP {http_status}")
    if not isinstance(doc, dict):
        return failed(requested, "malformed", "expected a JSON object")
    pieces = doc.get("mailPieces")
    if arr(doc.get("errors")) or (pieces is None and (http_status >= 400 or "httpCode" in doc)):
        return failed(requested, *_error(doc.get("errors"), doc, http_status))
    if isinstance(pieces, dict):
        pieces = [pieces]
    if not isinstance(pieces, list) or not pieces:
        return failed(requested, "malformed", "expected a 'mailPieces' object or array")
    return merge(
        _parse_piece(piece, index, requested, raw_ref, source) for index, piece in enumerate(pieces)
    )


def _error(items: Any, doc: dict[str, Any], http_status: int) -> tuple[str, str]:
    details = [obj(i) for i in arr(items)] or [doc]
    parts = [text(doc.get("httpMessage")), text(doc.get("moreInformation"))]
    for item in details[:3]:
        parts.extend(text(item.get(k)) for k in ("errorCode", "errorDescription", "errorCause"))
    message = " – ".join(dict.fromkeys(p for p in parts if p)) or "error without a message"
    code = "not_found" if http_status == 404 or _NOT_FOUND.search(message) else "carrier_error"
    return code, f"HTTP {http_status}: {message}"


def _parse_piece(
    piece: Any, index: int, requested: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    if not isinstance(piece, dict):
        return failed(requested, "malformed", f"mailPieces[{index}] is not an object")
    summary = obj(piece.get("summary"))
    number = text(summary.get("oneDBarcode")) or text(piece.get("mailPieceId")) or (requested or "")
    if isinstance(piece.get("error"), dict):
        return failed(number or requested, *_error([piece["error"]], {}, 200))
    if not number:
        return failed(requested, "malformed", f"mailPieces[{index}] has no barcode")
    raw_events = piece.get("events")
    if not isinstance(raw_events, list) or not raw_events:
        return failed(number, "not_found", "the answer has no events")
    redact = Redactor([text(obj(piece.get("signature")).get("recipientName"))])
    drafts, errors = read_events(
        raw_events, lambda raw, position: _read_event(raw, position, redact), number, "events"
    )
    route = Route(
        country_code(summary.get("originCountryCode")),
        country_code(summary.get("destinationCountryCode")),
    )
    return finish(
        CARRIER,
        number,
        drafts,
        raw_ref=raw_ref,
        source=source,
        newest_first=True,
        route=route,
        errors=errors,
        handoff=_provider_handoff(summary, number),
        handoff_at=lambda d: d.substatus is U.DEPARTED_ORIGIN_COUNTRY,
    )


def _read_event(raw: Any, position: int, redact: Redactor) -> Draft:
    if not isinstance(raw, dict):
        raise InvalidInput("event is not an object")
    stamp = text(raw.get("eventDateTime"))
    if not stamp:
        raise InvalidInput("event has no 'eventDateTime'")
    code = code_text(raw.get("eventCode")).upper()
    description = redact(text(raw.get("eventName")))
    location = _location(redact(text(raw.get("locationName"))))
    time = resolve_text(stamp, location.country if location else None)
    status, substatus, module = classify_postal(code, description, EVENT_CODES, _TEXT)
    return Draft(
        position=position,
        raw_timestamp=stamp,
        time=time,
        status=status,
        substatus=substatus,
        module=module,
        carrier_code=code or None,
        description=description,
        location=location,
    )


def _location(name: str) -> Location | None:
    if not name:
        return None
    country = country_code(name)
    if country is not None:
        return make_location(country=country)
    return make_location(facility=name, country="GB" if _UK_SITE.search(name) else None)


def _provider_handoff(summary: dict[str, Any], number: str) -> Handoff | None:
    provider = obj(summary.get("internationalPostalProvider"))
    named = " ".join(text(provider.get(k)) for k in ("title", "url", "description"))
    for pattern, carrier in _PROVIDERS:
        if pattern.search(named):
            return Handoff(
                carrier=carrier,
                tracking_number=number,
                evidence="summary.internationalPostalProvider",
                confidence=0.8,
            )
    return None

"""La Poste / Colissimo Suivi v2 (``GET /suivi/v2/idships/{id[,id]}?lang=fr_FR``): canonical events.

Quirks handled (reference/carrier-contracts.md §8, La Poste):
- the root is an array (one element per number asked), a single object for some answers;
- each element has its own ``returnCode``: errors arrive inside HTTP 200 (``104`` unknown
  number, ``105`` invalid number) next to good answers, and as a 4xx body with the same fields;
- ``shipment.event[]`` has ``code`` (``DR1``, ``PC1``, ``ET1``-``ET4``, ``DO1``-``DO3``, ``MD2``,
  ``AG1``, ``ND1``, ``RE1``, ``DI1``, ``DI2``...), a French ``label`` and an ISO ``date`` with an
  offset (``+01:00``/``+02:00``, ``+0100`` accepted); events have no location at all;
- ``timeline[]`` milestones duplicate the events and are not read;
- ``shipment.idShip`` is the number answered and is used;
- events are newest first; duplicates are dropped;
- ``ND1`` reasons ("destinataire absent", "adresse incorrecte", "refusé") refine the substatus;
  signatories in labels ("signé par …") are redacted; ``holder`` is not read.
"""

from __future__ import annotations

import re
from typing import Any

from services.carriers.adapters.base import ParseResult, guarded
from services.carriers.adapters.postal import (
    Draft,
    Redactor,
    Route,
    code_text,
    country_code,
    failed,
    finish,
    load_json,
    merge,
    obj,
    read_events,
    resolve_text,
    text,
)
from shared.errors import InvalidInput
from shared.taxonomy import Module, Source, Status, Substatus

CARRIER = "la-poste"

S, U, M = Status, Substatus, Module
# fmt: off
EVENT_CODES: dict[str, tuple[Status, Substatus | None, Module | None]] = {
    "DR1": (S.INFO_RECEIVED, None, M.ORIGIN),           # déclaratif réceptionné
    "PC1": (S.IN_TRANSIT, U.PICKED_UP, M.ORIGIN),        # pris en charge
    "PC2": (S.IN_TRANSIT, U.PICKED_UP, M.ORIGIN),        # pris en charge dans le pays d'expédition
    "ET1": (S.IN_TRANSIT, None, None),                  # en cours de traitement
    "ET2": (S.IN_TRANSIT, None, M.ORIGIN),               # ... dans le pays d'expédition
    "ET3": (S.IN_TRANSIT, None, M.DESTINATION),          # ... dans le pays de destination
    "ET4": (S.IN_TRANSIT, None, M.INTERNATIONAL),        # ... dans un pays de transit
    "EP1": (S.IN_TRANSIT, None, M.DESTINATION),          # en attente de présentation
    "DO1": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED, M.INTERNATIONAL),  # entrée en douane
    "DO2": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED, M.INTERNATIONAL),   # sortie de douane
    "DO3": (S.EXCEPTION, U.IMPORT_CUSTOMS_HELD, M.INTERNATIONAL),        # retenu en douane
    "PB1": (S.EXCEPTION, None, None),                   # problème en cours
    "PB2": (S.IN_TRANSIT, None, None),                  # problème résolu
    "MD2": (S.OUT_FOR_DELIVERY, None, M.DESTINATION),    # mis en distribution
    "ND1": (S.FAILED_ATTEMPT, None, M.DESTINATION),      # non distribuable
    "AG1": (S.AVAILABLE_FOR_PICKUP, None, M.DESTINATION),  # en attente d'être retiré
    "RE1": (S.EXCEPTION, U.RETURNING, None),            # retourné à l'expéditeur
    "DI1": (S.DELIVERED, None, M.DESTINATION),           # distribué
    "DI2": (S.RETURNED, None, None),                    # distribué à l'expéditeur
}
LABEL_REASONS: tuple[tuple[str, Substatus], ...] = (
    (r"refus", U.REFUSED),
    (r"absent|absence", U.RECIPIENT_UNAVAILABLE),
    (r"adress", U.ADDRESS_ISSUE),
    (r"endommag|abîm|détérior", U.DAMAGED),
    (r"droits|taxes? (?:à payer|dues?)", U.DUTIES_PAYABLE),
)
# fmt: on
_REASONS = tuple((re.compile(p, re.IGNORECASE), sub) for p, sub in LABEL_REASONS)
NOT_FOUND_CODES = frozenset({104, 404})


class LaPosteAdapter:
    carrier = CARRIER
    name = "La Poste / Colissimo (Suivi v2)"

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
        if http_status >= 400:
            code = "not_found" if http_status == 404 else "carrier_error"
            return failed(requested, code, f"HTTP {http_status}")
        return failed(requested, "malformed", str(exc))
    answers = doc if isinstance(doc, list) else [doc]
    if not answers:
        return failed(requested, "not_found", "empty answer array")
    asked = requested if len(answers) == 1 else None
    return merge(
        _parse_answer(answer, index, asked, raw_ref, source, http_status)
        for index, answer in enumerate(answers)
    )


def _parse_answer(
    answer: Any,
    index: int,
    requested: str | None,
    raw_ref: str | None,
    source: Source,
    http_status: int,
) -> ParseResult:
    if not isinstance(answer, dict):
        return failed(requested, "malformed", f"answer[{index}] is not an object")
    shipment = obj(answer.get("shipment"))
    number = text(shipment.get("idShip")) or text(answer.get("idShip")) or requested
    return_code = answer.get("returnCode")
    if not isinstance(return_code, int) or isinstance(return_code, bool):
        return_code = http_status
    if return_code != 200 or not shipment:
        message = text(answer.get("returnMessage")) or text(answer.get("message")) or "no shipment"
        code = "not_found" if return_code in NOT_FOUND_CODES else "carrier_error"
        if return_code == 200:
            code = "malformed"
        return failed(number, code, f"returnCode {return_code}: {message}")
    if not number:
        return failed(requested, "malformed", f"answer[{index}] has no 'idShip'")
    raw_events = shipment.get("event")
    if not isinstance(raw_events, list) or not raw_events:
        return failed(number, "not_found", "the shipment has no events")
    redact = Redactor()
    drafts, errors = read_events(
        raw_events, lambda raw, position: _read_event(raw, position, redact), number, "event"
    )
    context = obj(shipment.get("contextData"))
    route = Route(
        country_code(context.get("originCountry")), country_code(context.get("arrivalCountry"))
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
    )


def _read_event(raw: Any, position: int, redact: Redactor) -> Draft:
    if not isinstance(raw, dict):
        raise InvalidInput("event is not an object")
    stamp = text(raw.get("date"))
    if not stamp:
        raise InvalidInput("event has no 'date'")
    code = code_text(raw.get("code")).upper()
    label = redact(text(raw.get("label")))
    status, substatus, module = EVENT_CODES.get(code, (Status.IN_TRANSIT, None, None))
    if status in (Status.FAILED_ATTEMPT, Status.EXCEPTION) and substatus is None:
        substatus = next((sub for p, sub in _REASONS if p.search(label)), None)
    return Draft(
        position=position,
        raw_timestamp=stamp,
        time=resolve_text(stamp, None),
        status=status,
        substatus=substatus,
        module=module,
        carrier_code=code or None,
        description=label,
        location=None,
    )

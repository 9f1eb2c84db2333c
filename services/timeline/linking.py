"""Which legs a shipment gains, and on what evidence: pure rules (no I/O, no clock).

A leg is opened by

- registration: the number the merchant registered (the carrier they named, or the best detected);
- a carrier's hand-off field (``TrackingEvent.handoff``), if the next number is not refuted by its
  carrier's check digit;
- scan text naming a next number that passes a carrier's check digit (less sure than a field);
- the destination post, for a UPU S10 item that reached the inward office of exchange (EMD): the
  destination post tracks the SAME number;
- a merchant manifest (``POST /v1/shipments/{id}/legs``);
- events from another carrier for a number that already is a leg, when the number's format says
  that carrier may well hold it (the poller re-detected the carrier after repeated "not found").

Every link keeps ``opened_by``, ``evidence`` and ``confidence``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared.errors import InvalidInput
from shared.numbers import (
    AGGREGATORS,
    CARRIER_IDS,
    DESTINATION_POSTS,
    POSTAL_CARRIERS,
    FoundNumber,
    carrier_named_in,
    check_digit_ok,
    detect,
    find_numbers,
    is_valid_s10,
    normalise,
)
from shared.schema import Handoff, Location, TrackingEvent
from shared.taxonomy import Substatus

REGISTRATION = "registration"
FIRST_EVENT = "first_event"
HANDOFF_FIELD = "handoff_field"
HANDOFF_TEXT = "handoff_text"
DESTINATION_POST = "destination_post"
POSTAL_NETWORK = "postal_network"
MANIFEST = "manifest"
SAME_NUMBER = "same_number"

DESTINATION_POST_CONFIDENCE = 0.85
POSTAL_NETWORK_CONFIDENCE = 0.85
UPU = "upu"
# UPU codes of an item at or leaving the origin country's outward office of exchange.
_OUTWARD_CODES = frozenset({"EMB", "EMC", "EXA", "EXB", "EXC", "EXD"})
TEXT_CONFIDENCE_CAP = 0.7  # text is never as sure as a field
_EVIDENCE_CHARS = 300


@dataclass(frozen=True)
class Link:
    carrier: str
    tracking_number: str
    opened_by: str
    evidence: str
    confidence: float
    detected: bool = False  # the carrier is a guess from the number's format

    @property
    def key(self) -> tuple[str, str]:
        return (self.carrier, self.tracking_number)


@dataclass(frozen=True)
class EventFacts:
    """What the rules read from an event, whether it is a wire event or a stored row."""

    carrier: str
    tracking_number: str
    status: str
    substatus: str | None
    carrier_code: str | None
    description: str
    country: str | None
    handoff: Handoff | None

    @classmethod
    def of(cls, event: Any) -> EventFacts:
        location = event.location
        if isinstance(location, Mapping):
            country = location.get("country")
        else:
            country = location.country if isinstance(location, Location) else None
        handoff = event.handoff
        if isinstance(handoff, Mapping):
            try:
                handoff = Handoff.model_validate(handoff)
            except ValidationError:
                handoff = None
        return cls(
            carrier=event.carrier,
            tracking_number=event.tracking_number,
            status=str(event.status),
            substatus=str(event.substatus) if event.substatus else None,
            carrier_code=event.carrier_code,
            description=event.description or "",
            country=country,
            handoff=handoff if isinstance(handoff, Handoff) else None,
        )


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EVIDENCE_CHARS else text[: _EVIDENCE_CHARS - 1] + "…"


def carrier_id(name: str | None, number: str) -> str | None:
    """A carrier id from how an adapter named it, else from the number; None when unknown."""
    if name:
        slug = name.strip().lower().replace("_", "-").replace(" ", "-")
        if slug in CARRIER_IDS:
            return slug
        named = carrier_named_in(name.replace("-", " ").replace("_", " "))
        return named[0] if named else None  # a carrier we do not support: no leg
    best = next((c for c in detect(number) if c.carrier not in AGGREGATORS), None)
    return best.carrier if best else None


def registration_link(number: str, carrier: str | None) -> Link:
    """The first leg of a registered shipment; the merchant's carrier overrides detection."""
    if carrier is not None:
        if carrier not in CARRIER_IDS:
            raise InvalidInput(f"unknown carrier {carrier!r}; supported: {', '.join(CARRIER_IDS)}")
        return Link(carrier, number, REGISTRATION, "carrier named by the merchant", 1.0)
    candidates = detect(number)
    if not candidates:
        raise InvalidInput(
            f"cannot tell the carrier of {number!r} from the number; pass 'carrier' "
            f"(one of: {', '.join(CARRIER_IDS)})"
        )
    best = candidates[0]
    return Link(
        best.carrier, number, REGISTRATION, f"detected: {best.reason}", best.confidence, True
    )


def manifest_link(carrier: str, tracking_number: str, evidence: str | None) -> Link:
    """A leg the merchant declares; refused only when the carrier's check digit refutes it."""
    if carrier not in CARRIER_IDS:
        raise InvalidInput(f"unknown carrier {carrier!r}; supported: {', '.join(CARRIER_IDS)}")
    number = normalise(tracking_number)
    if check_digit_ok(carrier, number) is False:
        raise InvalidInput(f"{number} fails the {carrier} check digit: check the number")
    text = _clip(evidence) if evidence else "merchant manifest"
    return Link(carrier, number, MANIFEST, text, 1.0)


def link_from_handoff(facts: EventFacts) -> Link | None:
    """Rule (a): the hand-off field an adapter filled in."""
    handoff = facts.handoff
    if handoff is None:
        return None
    try:
        number = normalise(handoff.tracking_number)
    except InvalidInput:
        return None
    carrier = carrier_id(handoff.carrier, number)
    if carrier is None or (carrier, number) == (facts.carrier, facts.tracking_number):
        return None
    if check_digit_ok(carrier, number) is False:
        return None
    evidence = f"{facts.carrier} hand-off field ({_clip(handoff.evidence)})"
    detected = handoff.carrier is None
    return Link(carrier, number, HANDOFF_FIELD, evidence, handoff.confidence, detected)


@functools.lru_cache(maxsize=16384)
def _numbers_in(description: str, carrier: str) -> tuple[FoundNumber, ...]:
    # Scan texts repeat ("Arrived at sorting centre"): read each (text, carrier) once.
    return tuple(find_numbers(description, skip=(carrier,)))


def links_from_text(facts: EventFacts) -> list[Link]:
    """Rule (b): next numbers named in the scan text that pass their carrier's check digit."""
    links: list[Link] = []
    if not facts.description:
        return links
    for found in _numbers_in(facts.description, facts.carrier):
        # The event's own number, unless the text hands it to a named carrier, is no news.
        if found.tracking_number == facts.tracking_number and not found.named:
            continue
        evidence = f"{facts.carrier} scan text: {found.reason}: {_clip(facts.description)!r}"
        confidence = min(found.confidence, TEXT_CONFIDENCE_CAP)
        links.append(
            Link(
                found.carrier,
                found.tracking_number,
                HANDOFF_TEXT,
                evidence,
                confidence,
                detected=not found.named,
            )
        )
    return links


def _at_inward_office(facts: EventFacts) -> bool:
    at_inward = (
        facts.substatus == Substatus.ARRIVED_DESTINATION_COUNTRY or facts.carrier_code == "EMD"
    )
    return at_inward and is_valid_s10(facts.tracking_number)


def link_to_destination_post(facts: EventFacts, destination_country: str | None) -> Link | None:
    """Rule (c): an S10 item at the inward office of exchange is tracked by the destination post."""
    number = facts.tracking_number
    if not _at_inward_office(facts):
        return None
    country = destination_country or facts.country
    post = DESTINATION_POSTS.get(country or "")
    if post is None or post == facts.carrier:
        return None
    evidence = (
        f"S10 item reached the inward office of exchange in {country} "
        f"({facts.carrier} {facts.carrier_code or facts.substatus}); {post} tracks the same number"
    )
    return Link(post, number, DESTINATION_POST, evidence, DESTINATION_POST_CONFIDENCE)


def link_to_postal_network(facts: EventFacts) -> Link | None:
    """Rule (c), international part: an S10 item that a post brought to its outward office of
    exchange travels in the UPU network, whose feed reports the same number's international events
    (dispatch, customs on both sides, arrival at the inward office of exchange)."""
    number = facts.tracking_number
    at_outward = facts.carrier_code in _OUTWARD_CODES or facts.substatus in (
        Substatus.DEPARTED_ORIGIN_COUNTRY,
        Substatus.EXPORT_CUSTOMS_PRESENTED,
    )
    if (
        not at_outward
        or facts.carrier == UPU
        or facts.carrier not in POSTAL_CARRIERS
        or not is_valid_s10(number)
    ):
        return None
    evidence = (
        f"S10 item at the outward office of exchange ({facts.carrier} "
        f"{facts.carrier_code or facts.substatus}); the UPU network reports the same number"
    )
    return Link(UPU, number, POSTAL_NETWORK, evidence, POSTAL_NETWORK_CONFIDENCE)


def links_from_event(facts: EventFacts, destination_country: str | None) -> list[Link]:
    """Every leg one event opens, at most one per (carrier, number), the surest kept."""
    found = [
        link_from_handoff(facts),
        *links_from_text(facts),
        link_to_postal_network(facts),
        link_to_destination_post(facts, destination_country),
    ]
    best: dict[tuple[str, str], Link] = {}
    for link in found:
        if link is None or link.key == (facts.carrier, facts.tracking_number):
            continue
        if link.key not in best or link.confidence > best[link.key].confidence:
            best[link.key] = link
    return list(best.values())


def may_open_legs(facts: EventFacts) -> bool:
    """Whether some rule of ``links_from_event`` could open a leg from this event, whatever the
    shipment's destination: a cheap test before the shipments are read."""
    return (
        facts.handoff is not None
        or bool(facts.description and _numbers_in(facts.description, facts.carrier))
        or link_to_postal_network(facts) is not None
        or _at_inward_office(facts)
    )


def same_number_link(carrier: str, number: str, known_carriers: Iterable[str]) -> Link | None:
    """Events from ``carrier`` for a number that is already a leg under other carriers.

    Accepted when the number's format says ``carrier`` may hold it: any post for an S10 number
    (origin and destination posts share it), else a detected candidate. Otherwise the events belong
    to some other parcel that happens to share the digits.
    """
    others = sorted(set(known_carriers) - {carrier})
    if not others:
        return None
    if is_valid_s10(number) and carrier in POSTAL_CARRIERS:
        confidence, why = 0.8, "an S10 number is shared by the posts along its way"
    else:
        candidate = next((c for c in detect(number) if c.carrier == carrier), None)
        if candidate is None:
            return None
        confidence, why = min(candidate.confidence, 0.8), f"detected: {candidate.reason}"
    evidence = f"{carrier} reports {number}, already a leg with {', '.join(others)}; {why}"
    return Link(carrier, number, SAME_NUMBER, evidence, confidence)


def facts_of(events: Iterable[TrackingEvent | Any]) -> list[EventFacts]:
    return [EventFacts.of(e) for e in events]

"""Leg linking rules as pure functions: hand-off field, text, destination post, manifest."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.timeline.linking import (
    DESTINATION_POST,
    HANDOFF_FIELD,
    HANDOFF_TEXT,
    MANIFEST,
    POSTAL_NETWORK,
    REGISTRATION,
    SAME_NUMBER,
    EventFacts,
    link_from_handoff,
    link_to_destination_post,
    link_to_postal_network,
    links_from_event,
    links_from_text,
    manifest_link,
    registration_link,
    same_number_link,
)
from shared.errors import InvalidInput
from shared.schema import Handoff, Location, TrackingEvent, make_event_id
from shared.taxonomy import Status, Substatus, TimeBasis

S10_CN = "RR123456785CN"  # a valid S10 number issued by China Post (check digit 5)
IMPB = "9405803699300124287899"  # a valid USPS IMpb number


def facts(
    carrier: str = "china-post",
    number: str = S10_CN,
    *,
    substatus: Substatus | None = None,
    code: str | None = None,
    description: str = "",
    country: str | None = None,
    handoff: Handoff | None = None,
) -> EventFacts:
    event = TrackingEvent(
        event_id=make_event_id(carrier, number, code, "2026-01-01T00:00:00", None),
        carrier=carrier,
        tracking_number=number,
        occurred_at_local="2026-01-01T00:00:00",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        time_basis=TimeBasis.CARRIER_UTC,
        status=Status.IN_TRANSIT,
        substatus=substatus,
        carrier_code=code,
        description=description,
        location=Location(country=country) if country else None,
        handoff=handoff,
    )
    return EventFacts.of(event)


# --- (a) the hand-off field ---------------------------------------------------------------------


def test_handoff_field_opens_a_leg_with_its_evidence_and_confidence() -> None:
    link = link_from_handoff(
        facts(
            "4px",
            "4PX3000123456789CN",
            handoff=Handoff(
                carrier="usps", tracking_number=IMPB, evidence="lastMileNo", confidence=0.95
            ),
        )
    )
    assert link is not None
    assert (link.carrier, link.tracking_number, link.opened_by) == ("usps", IMPB, HANDOFF_FIELD)
    assert link.confidence == 0.95 and "lastMileNo" in link.evidence and "4px" in link.evidence
    assert not link.detected


def test_handoff_field_refuted_by_the_check_digit_is_ignored() -> None:
    bad = IMPB[:-1] + str((int(IMPB[-1]) + 1) % 10)
    handoff = Handoff(carrier="usps", tracking_number=bad, evidence="lastMileNo")
    assert link_from_handoff(facts("4px", "4PX3000123456789CN", handoff=handoff)) is None


def test_handoff_field_without_a_carrier_is_detected_from_the_number() -> None:
    handoff = Handoff(tracking_number="1Z999AA10123456784", evidence="next_couriers")
    link = link_from_handoff(facts("aftership", "YT2229521272164446", handoff=handoff))
    assert link is not None and link.carrier == "ups" and link.detected


def test_handoff_field_names_carriers_the_way_adapters_write_them() -> None:
    for name in ("Royal Mail", "royal_mail", "ROYAL-MAIL"):
        handoff = Handoff(carrier=name, tracking_number=S10_CN, evidence="field")
        link = link_from_handoff(facts(handoff=handoff))
        assert link is not None and link.carrier == "royal-mail", name
    # A carrier we do not support opens no leg: nothing could poll it.
    handoff = Handoff(carrier="evri", tracking_number="H01ABC1234567890", evidence="field")
    assert link_from_handoff(facts(handoff=handoff)) is None


def test_handoff_to_itself_is_no_link() -> None:
    handoff = Handoff(carrier="china-post", tracking_number=S10_CN, evidence="field")
    assert link_from_handoff(facts(handoff=handoff)) is None


# --- (b) text -----------------------------------------------------------------------------------


def test_text_naming_the_next_carrier_and_a_valid_number() -> None:
    links = links_from_text(facts(description=f"Handed over to USPS, tracking no. {IMPB}"))
    assert [(lk.carrier, lk.tracking_number, lk.opened_by) for lk in links] == [
        ("usps", IMPB, HANDOFF_TEXT)
    ]
    assert links[0].confidence <= 0.7 and IMPB in links[0].evidence


def test_text_number_with_a_wrong_check_digit_opens_nothing() -> None:
    bad = IMPB[:-1] + str((int(IMPB[-1]) + 3) % 10)
    assert links_from_text(facts(description=f"Handed over to USPS, tracking no. {bad}")) == []


def test_the_events_own_number_in_its_text_is_no_hand_off() -> None:
    assert links_from_text(facts(description=f"Item {S10_CN} accepted at Shenzhen")) == []
    # ...unless the text hands it to a named carrier: the destination post keeps the S10 number.
    links = links_from_text(facts(description=f"Item {S10_CN} handed over to Royal Mail"))
    assert [(lk.carrier, lk.tracking_number) for lk in links] == [("royal-mail", S10_CN)]


def test_a_field_beats_text_for_the_same_leg() -> None:
    handoff = Handoff(carrier="usps", tracking_number=IMPB, evidence="field", confidence=0.9)
    links = links_from_event(
        facts("4px", "4PX3000123456789CN", description=f"USPS {IMPB}", handoff=handoff), None
    )
    assert [(lk.carrier, lk.opened_by, lk.confidence) for lk in links] == [
        ("usps", HANDOFF_FIELD, 0.9)
    ]


# --- (c) the destination post -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "post"),
    [
        ("US", "usps"),
        ("GB", "royal-mail"),
        ("FR", "la-poste"),
        ("AU", "australia-post"),
        ("CA", "canada-post"),
    ],
)
def test_s10_at_the_inward_office_of_exchange_opens_the_destination_post(
    country: str, post: str
) -> None:
    link = link_to_destination_post(facts(code="EMD"), country)
    assert link is not None
    assert (link.carrier, link.tracking_number, link.opened_by) == (post, S10_CN, DESTINATION_POST)
    assert country in link.evidence


def test_destination_post_by_substatus_and_by_the_events_country() -> None:
    by_substatus = facts(substatus=Substatus.ARRIVED_DESTINATION_COUNTRY, country="GB")
    link = link_to_destination_post(by_substatus, None)
    assert link is not None and link.carrier == "royal-mail"
    # The shipment's destination country wins over the office's location.
    link = link_to_destination_post(by_substatus, "FR")
    assert link is not None and link.carrier == "la-poste"


def test_no_destination_post_before_emd_for_other_numbers_or_unknown_countries() -> None:
    assert link_to_destination_post(facts(code="EMC"), "US") is None
    assert link_to_destination_post(facts("dhl", "1234567891", code="EMD"), "US") is None
    assert link_to_destination_post(facts(code="EMD"), "DE") is None  # no post of ours
    assert link_to_destination_post(facts(code="EMD"), None) is None
    assert link_to_destination_post(facts("usps", code="EMD"), "US") is None  # already there


# --- (c) the UPU network between the posts -------------------------------------------------------


@pytest.mark.parametrize("code", ["EMB", "EMC", "EXA", "EXC"])
def test_s10_at_the_outward_office_of_exchange_opens_the_upu_leg(code: str) -> None:
    link = link_to_postal_network(facts(code=code))
    assert link is not None
    assert (link.carrier, link.tracking_number, link.opened_by) == ("upu", S10_CN, POSTAL_NETWORK)
    assert f"china-post {code}" in link.evidence and link.confidence == 0.85


def test_upu_leg_by_substatus_when_the_post_writes_its_own_codes() -> None:
    link = link_to_postal_network(facts(substatus=Substatus.DEPARTED_ORIGIN_COUNTRY, code="DEP"))
    assert link is not None and link.carrier == "upu"


def test_no_upu_leg_before_the_outward_office_from_upu_itself_or_for_non_postal_items() -> None:
    assert link_to_postal_network(facts(code="EMA")) is None  # still at the origin post
    assert link_to_postal_network(facts("upu", code="EMC")) is None  # already the UPU leg
    assert link_to_postal_network(facts("4px", "4PX3000123456789CN", code="EMC")) is None
    assert link_to_postal_network(facts(number="RR123456780CN", code="EMC")) is None  # bad S10


def test_departure_then_arrival_open_the_upu_and_destination_legs() -> None:
    departed = links_from_event(facts(code="EMC"), "US")
    arrived = links_from_event(facts("upu", code="EMD"), "US")
    assert [(lk.carrier, lk.opened_by) for lk in departed] == [("upu", POSTAL_NETWORK)]
    assert [(lk.carrier, lk.opened_by) for lk in arrived] == [("usps", DESTINATION_POST)]


# --- registration, manifest, same number --------------------------------------------------------


def test_registration_prefers_the_merchants_carrier() -> None:
    named = registration_link(S10_CN, "usps")
    assert (named.carrier, named.opened_by, named.confidence, named.detected) == (
        "usps",
        REGISTRATION,
        1.0,
        False,
    )
    detected = registration_link(S10_CN, None)
    assert detected.carrier == "china-post" and detected.detected and detected.confidence < 1
    with pytest.raises(InvalidInput, match="unknown carrier"):
        registration_link(S10_CN, "pigeon")
    with pytest.raises(InvalidInput, match="pass 'carrier'"):
        registration_link("ABCDEFGHIJK", None)


def test_manifest_link_is_checked_against_check_digits() -> None:
    link = manifest_link("usps", " 9405 8036 9930 0124 2878 99 ", "manifest M-17")
    assert (link.carrier, link.tracking_number, link.opened_by, link.evidence) == (
        "usps",
        IMPB,
        MANIFEST,
        "manifest M-17",
    )
    with pytest.raises(InvalidInput, match="check digit"):
        manifest_link("usps", IMPB[:-1] + "0", None)
    with pytest.raises(InvalidInput, match="unknown carrier"):
        manifest_link("pigeon", IMPB, None)
    assert manifest_link("la-poste", "6A12345678901", None).carrier == "la-poste"


def test_same_number_from_another_carrier() -> None:
    link = same_number_link("usps", S10_CN, ["china-post"])
    assert link is not None and link.opened_by == SAME_NUMBER and "china-post" in link.evidence
    # FedEx is a candidate for a 12-digit number DHL did not know.
    assert same_number_link("fedex", "986578788855", ["dhl"]) is not None
    # UPS cannot hold a 10-digit DHL Express number: another parcel with the same digits.
    assert same_number_link("ups", "1234567891", ["dhl"]) is None
    assert same_number_link("dhl", "1234567891", ["dhl"]) is None

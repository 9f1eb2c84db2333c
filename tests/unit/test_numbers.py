"""Carrier detection from the number alone: check digits, ranked candidates, numbers in text."""

from __future__ import annotations

import random

import pytest

from shared.numbers import (
    AGGREGATORS,
    CARRIER_IDS,
    DESTINATION_POSTS,
    check_digit_ok,
    detect,
    find_numbers,
    is_valid_dhl_express,
    is_valid_fedex_express,
    is_valid_fedex_ground,
    is_valid_impb,
    is_valid_s10,
    is_valid_ups,
    s10_check_digit,
)

# --- independent check-digit implementations, written from the published rules ------------------


def s10(prefix: str, serial: str, country: str) -> str:
    weights = [8, 6, 4, 2, 3, 5, 9, 7]
    check = 11 - sum(int(d) * w for d, w in zip(serial, weights, strict=True)) % 11
    check = {10: 0, 11: 5}.get(check, check)
    return f"{prefix}{serial}{check}{country}"


def ups(body15: str) -> str:
    """1Z + 15 characters + check: odd positions x1, even positions x2, letters (ord-63) % 10."""
    values = [int(c) if c.isdigit() else (ord(c) - 63) % 10 for c in body15]
    total = sum(v * (2 if i % 2 else 1) for i, v in enumerate(values))
    return f"1Z{body15}{(10 - total % 10) % 10}"


def fedex12(body11: str) -> str:
    total = sum(int(d) * w for d, w in zip(body11, [3, 1, 7] * 4, strict=False))
    return body11 + str(total % 11 % 10)


def mod10_from_right(body: str, first: int, second: int) -> str:
    total = sum(int(d) * (first if i % 2 == 0 else second) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def dhl10(body9: str) -> str:
    return body9 + str(int(body9) % 7)


def tamper(number: str, index: int = -1) -> str:
    """The same number with one check character changed."""
    i = index % len(number)
    char = number[i]
    return number[:i] + str((int(char) + 1) % 10) + number[i + 1 :]


# --- known published examples ----------------------------------------------------------------

KNOWN_VALID = {
    "RR123456785GB": "s10",  # the S10 specimen: weights 8 6 4 2 3 5 9 7 give 5
    "1Z999AA10123456784": "ups",  # UPS's own documentation number
    "986578788855": "fedex12",
    "477179081230": "fedex12",
    "041441760228964": "fedex15",
    "568283610012000": "fedex15",
    "9405803699300124287899": "impb",
    "9400111201080805483016": "impb",
    "9361289878700317633795": "impb",
    "9505511069605048600624": "impb",
}
VALIDATORS = {
    "s10": is_valid_s10,
    "ups": is_valid_ups,
    "fedex12": is_valid_fedex_express,
    "fedex15": is_valid_fedex_ground,
    "impb": is_valid_impb,
}


@pytest.mark.parametrize(("number", "kind"), sorted(KNOWN_VALID.items()))
def test_known_numbers_pass_and_a_changed_check_digit_fails(number: str, kind: str) -> None:
    assert VALIDATORS[kind](number)
    assert not VALIDATORS[kind](tamper(number, -1 if kind != "s10" else 10))


def test_a_widely_copied_usps_example_does_not_actually_validate() -> None:
    # 9400 1118 9922 3197 4284 90 appears in many code samples; its check digit is not right.
    assert not is_valid_impb("9400111899223197428490")
    assert check_digit_ok("usps", "9400111899223197428490") is False


def test_generated_numbers_agree_with_independent_implementations() -> None:
    rng = random.Random(20261125)
    for _ in range(300):
        serial = f"{rng.randrange(10**8):08d}"
        assert is_valid_s10(s10("LX", serial, "CN"))
        assert s10_check_digit(serial) == int(s10("LX", serial, "CN")[10])
        body = "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTVWXYZ") for _ in range(15))
        assert is_valid_ups(ups(body))
        assert is_valid_fedex_express(fedex12(f"{rng.randrange(10**11):011d}"))
        assert is_valid_fedex_ground(mod10_from_right(f"{rng.randrange(10**14):014d}", 3, 1))
        assert is_valid_impb(mod10_from_right("92" + f"{rng.randrange(10**19):019d}", 3, 1))
        assert is_valid_dhl_express(dhl10(f"{rng.randrange(10**9):09d}"))


def test_s10_check_digit_special_cases_10_and_11() -> None:
    # 11 - (sum mod 11) = 10 → 0 and = 11 → 5; find serials hitting both.
    seen = {s10_check_digit(f"{n:08d}") for n in range(2000)}
    assert seen == set(range(10))
    serial = next(f"{n:08d}" for n in range(2000) if 11 - (_s10_sum(f"{n:08d}") % 11) == 11)
    assert s10_check_digit(serial) == 5
    serial = next(f"{n:08d}" for n in range(2000) if 11 - (_s10_sum(f"{n:08d}") % 11) == 10)
    assert s10_check_digit(serial) == 0


def _s10_sum(serial: str) -> int:
    return sum(int(d) * w for d, w in zip(serial, [8, 6, 4, 2, 3, 5, 9, 7], strict=True))


# --- detection -----------------------------------------------------------------------------------


def carriers(number: str) -> list[str]:
    return [c.carrier for c in detect(number)]


@pytest.mark.parametrize(
    ("country", "post"), sorted(DESTINATION_POSTS.items()), ids=sorted(DESTINATION_POSTS)
)
def test_s10_ranks_the_issuing_post_then_upu_then_yanwen(country: str, post: str) -> None:
    number = s10("LX", "12345678", country)
    assert carriers(number) == [post, "upu", "yanwen"]
    assert all(c.reason and 0 < c.confidence <= 1 for c in detect(number))


def test_s10_of_a_post_we_do_not_poll_directly_goes_to_upu() -> None:
    assert carriers(s10("RR", "12345678", "DE")) == ["upu", "yanwen"]
    # LX is the ePacket service code, and DHL eCommerce's prefix: only Deutsche Post's are DHL's.
    assert carriers(s10("LX", "12345678", "DE")) == ["upu", "dhl", "yanwen"]
    assert carriers("RR123456785GB")[0] == "royal-mail"


def test_s10_with_a_wrong_check_digit_is_not_detected_as_s10() -> None:
    assert carriers("RR123456784GB") == []


def test_express_formats() -> None:
    assert carriers("1Z999AA10123456784") == ["ups"]
    assert carriers("1Z999AA10123456785") == []
    assert carriers(dhl10("123456789")) == ["dhl"]
    assert carriers("1234567890") == []  # 123456789 % 7 = 1, not 0
    assert carriers("041441760228964") == ["fedex"]


def test_overlaps_come_ranked() -> None:
    # 12 digits: FedEx Express when its check digit holds, DHL Paket by pattern anyway.
    assert carriers("986578788855") == ["fedex", "dhl"]
    assert carriers("996578788855") == ["dhl"]
    # IMpb starting 92: USPS, and FedEx SmartPost hands such numbers to USPS.
    assert carriers("9261292700768711948021") == ["usps", "fedex"]
    # A 20-digit number failing the IMpb check: DHL Paket or a FedEx door tag.
    assert carriers("00340434161094042557") == ["dhl", "fedex"]


def test_chinese_cross_border_prefixes() -> None:
    assert carriers("YT2229521272164446") == ["yunexpress"]
    assert carriers("YT123456789012345") == []  # 15 digits after YT
    assert carriers("LP00123456789012") == ["cainiao"]
    assert carriers("SF123456789012") == ["sf-express"]
    assert carriers("4PX3000123456789CN") == ["4px"]
    assert carriers("UG123456789YP") == ["yanwen"]
    assert carriers("YW123456789012") == ["yanwen"]


def test_nothing_detects_an_aggregator_and_every_candidate_is_supported() -> None:
    samples = ["RR123456785GB", "1Z999AA10123456784", "986578788855", "YT2229521272164446"]
    for number in samples:
        for candidate in detect(number):
            assert candidate.carrier in CARRIER_IDS and candidate.carrier not in AGGREGATORS
    assert set(AGGREGATORS) <= set(CARRIER_IDS)
    assert len(CARRIER_IDS) == len(set(CARRIER_IDS)) == 18


# --- check_digit_ok ------------------------------------------------------------------------------


def test_check_digit_ok_is_true_false_or_unknowable() -> None:
    assert check_digit_ok("usps", "9405803699300124287899") is True
    assert check_digit_ok("usps", tamper("9405803699300124287899")) is False
    # The destination post tracks the origin post's S10 number.
    assert check_digit_ok("usps", "RR123456785CN") is True
    assert check_digit_ok("royal-mail", "RR123456784CN") is False
    assert check_digit_ok("ups", "1Z999AA10123456784") is True
    assert check_digit_ok("dhl", "1234567890") is False
    assert check_digit_ok("dhl", "JJD000390007882394123") is None  # DHL Paket: no check digit
    assert check_digit_ok("yunexpress", "YT2229521272164446") is None
    assert check_digit_ok("la-poste", "6A12345678901") is None  # a national format we do not know
    assert check_digit_ok("17track", "RR123456785GB") is None
    # Yanwen's UG numbers look like S10 without its check digit: a check-less format fits too.
    assert check_digit_ok("yanwen", "UG123456789CN") is None


# --- numbers in free text ------------------------------------------------------------------------


def test_a_named_carrier_and_a_valid_number_in_text() -> None:
    found = find_numbers("Handed over to USPS, tracking 9400 1112 0108 0805 4830 16.")
    assert [(f.carrier, f.tracking_number, f.named) for f in found] == [
        ("usps", "9400111201080805483016", True)
    ]
    assert found[0].confidence < 0.9


def test_strong_formats_are_read_without_a_name_weak_ones_are_not() -> None:
    found = find_numbers("Transit number 1Z999AA10123456784, call 0049 1234567891")
    assert [(f.carrier, f.tracking_number, f.named) for f in found] == [
        ("ups", "1Z999AA10123456784", False)
    ]
    # A 10-digit number passing DHL's mod 7 only counts when the text names DHL.
    assert [f.carrier for f in find_numbers("DHL waybill 1234567891")] == ["dhl"]


def test_text_numbers_need_a_valid_check_digit() -> None:
    assert find_numbers("Handed over to USPS, tracking 9400111899223197428490") == []
    assert find_numbers("Royal Mail RR123456784GB") == []


def test_the_events_own_carrier_is_skipped() -> None:
    text = "China Post item RR123456785CN handed over to Royal Mail"
    found = find_numbers(text, skip=("china-post",))
    assert [(f.carrier, f.tracking_number) for f in found] == [("royal-mail", "RR123456785CN")]
    assert "pick-ups" not in [f.carrier for f in find_numbers("pick-ups 1Z999AA10123456784")]

"""Tracking-number hygiene and carrier detection from the number alone.

Formats overlap (a 12-digit number may be FedEx Express or DHL Paket; an S10 number is known to
its origin post, to the UPU network and to the destination post), so ``detect`` returns ranked
candidates with a confidence and a reason. A merchant can always name the carrier, and the poller
moves to the next candidate when a carrier keeps answering "not found".

Check digits (reference/tracking-standards.md): UPU S10 (weights 8 6 4 2 3 5 9 7, mod 11), UPS 1Z
(mod 10, letters mapped to digits), FedEx Express 12 digits (weights 3 1 7, mod 11 then mod 10),
FedEx Ground 15 digits (mod 10, weights 1 3), DHL Express 10 digits (mod 7), USPS IMpb 20-22 digits
starting with 9 (mod 10, weights 3 1 from the right).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from shared.errors import InvalidInput

__all__ = [
    "AGGREGATORS",
    "CARRIER_IDS",
    "DESTINATION_POSTS",
    "POSTAL_CARRIERS",
    "Candidate",
    "FoundNumber",
    "carrier_named_in",
    "check_digit_ok",
    "detect",
    "find_numbers",
    "is_valid_s10",
    "normalise",
]

# Every carrier id a shipment or leg may name. Adapters arrive one by one, so the poller only polls
# the ids that have an adapter; the others can still be registered, linked and shown.
CARRIER_IDS: tuple[str, ...] = (
    "upu",
    "china-post",
    "usps",
    "royal-mail",
    "la-poste",
    "australia-post",
    "canada-post",
    "dhl",
    "ups",
    "fedex",
    "4px",
    "yanwen",
    "yunexpress",
    "cainiao",
    "sf-express",
    "17track",
    "aftership",
    "easypost",
)
# Aggregators track other carriers' numbers; a number never identifies one of them.
AGGREGATORS = frozenset({"17track", "aftership", "easypost"})

# The national post that issues S10 numbers with this country suffix, and that delivers items
# arriving in this country (the destination post asks for the same S10 number).
DESTINATION_POSTS: dict[str, str] = {
    "CN": "china-post",
    "US": "usps",
    "GB": "royal-mail",
    "FR": "la-poste",
    "AU": "australia-post",
    "CA": "canada-post",
}
POSTAL_CARRIERS = frozenset({"upu", *DESTINATION_POSTS.values()})

_ALLOWED = re.compile(r"^[A-Z0-9]{6,40}$")
_S10 = re.compile(r"^([A-Z]{2})(\d{8})(\d)([A-Z]{2})$")
_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_UPS = re.compile(r"^1Z[A-Z0-9]{16}$")
_FEDEX_EXPRESS_WEIGHTS = (3, 1, 7) * 4


@dataclass(frozen=True)
class Candidate:
    carrier: str
    confidence: float
    reason: str


@dataclass(frozen=True)
class FoundNumber:
    """A tracking number read from free text, with the carrier whose check digit it passes."""

    carrier: str
    tracking_number: str
    confidence: float
    reason: str
    named: bool = False  # the text names the carrier, not only the number's format


def normalise(raw: str) -> str:
    """Upper-case, without spaces or hyphens; refuses anything that cannot be a tracking number."""
    number = re.sub(r"[\s-]", "", raw or "").upper()
    if not _ALLOWED.match(number):
        raise InvalidInput(
            f"malformed tracking number {raw[:60]!r}: use 6 to 40 letters and digits"
        )
    return number


# --- check digits -------------------------------------------------------------------------------


def s10_check_digit(serial: str) -> int:
    total = sum(int(d) * w for d, w in zip(serial, _S10_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: 0, 11: 5}.get(check, check)


def is_valid_s10(number: str) -> bool:
    match = _S10.match(number)
    return bool(match) and s10_check_digit(match.group(2)) == int(match.group(3))  # type: ignore[union-attr]


def is_valid_dhl_express(number: str) -> bool:
    return len(number) == 10 and number.isdigit() and int(number[:9]) % 7 == int(number[9])


def _mod10(body: str, weights_from_right: tuple[int, int]) -> int:
    """The check digit making ``body`` + digit a multiple of 10, weights alternating from the right."""
    total = 0
    for i, char in enumerate(reversed(body)):
        value = int(char) if char.isdigit() else (ord(char) - 63) % 10  # UPS: A=2, B=3 ... J=1
        total += value * weights_from_right[i % 2]
    return (10 - total % 10) % 10


def is_valid_ups(number: str) -> bool:
    """``1Z`` + 16 characters; the last is a mod-10 check over the 15 before it."""
    return (
        bool(_UPS.match(number))
        and number[-1].isdigit()
        and (_mod10(number[2:-1], (1, 2)) == int(number[-1]))
    )


def is_valid_fedex_express(number: str) -> bool:
    """12 digits: weights 3 1 7 over the first 11, mod 11, then mod 10."""
    if len(number) != 12 or not number.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:11], _FEDEX_EXPRESS_WEIGHTS, strict=False))
    return total % 11 % 10 == int(number[11])


def is_valid_fedex_ground(number: str) -> bool:
    """15 digits, mod 10 with weights 1 and 3 (the digit next to the check weighs 3)."""
    return len(number) == 15 and number.isdigit() and _mod10(number[:-1], (3, 1)) == int(number[-1])


def is_valid_impb(number: str) -> bool:
    """USPS Intelligent Mail package barcode: 20-22 digits starting with 9, mod 10 (weights 3 1)."""
    return (
        20 <= len(number) <= 22
        and number.isdigit()
        and number[0] == "9"
        and _mod10(number[:-1], (3, 1)) == int(number[-1])
    )


# Per carrier: (shape, check) pairs. ``check`` None: the format has no check digit.
_Shape = Callable[[str], bool]
_Check = Callable[[str], bool] | None


def _s10_shape(n: str) -> bool:
    return bool(_S10.match(n))


def _digits(*lengths: int) -> _Shape:
    return lambda n: n.isdigit() and len(n) in lengths


def _prefixed(prefix: str, pattern: str) -> _Shape:
    compiled = re.compile(f"^{prefix}{pattern}$")
    return lambda n: bool(compiled.match(n))


_POSTAL: list[tuple[_Shape, _Check]] = [(_s10_shape, is_valid_s10)]
_FORMATS: dict[str, list[tuple[_Shape, _Check]]] = {
    **{carrier: _POSTAL for carrier in POSTAL_CARRIERS if carrier != "usps"},
    "usps": [
        (_s10_shape, is_valid_s10),
        (lambda n: n.isdigit() and 20 <= len(n) <= 22 and n[0] == "9", is_valid_impb),
    ],
    "ups": [(_prefixed("1Z", "[A-Z0-9]{16}"), is_valid_ups)],
    "fedex": [
        (_digits(12), is_valid_fedex_express),
        (_digits(15), is_valid_fedex_ground),
        (lambda n: n.isdigit() and len(n) == 22 and n.startswith("92"), is_valid_impb),
        (_digits(20, 22), None),
    ],
    "dhl": [
        (_digits(10), is_valid_dhl_express),
        (_digits(12, 20), None),
        (_prefixed("(?:JJD|GM|LX)", "[A-Z0-9]{6,}"), None),
    ],
    "yanwen": [(_s10_shape, is_valid_s10), (_prefixed("(?:UG|YW)", "[A-Z0-9]{8,}"), None)],
    "yunexpress": [(_prefixed("YT", r"\d{16}"), None)],
    "cainiao": [(_prefixed("LP", r"\d{14}"), None)],
    "4px": [(_prefixed("4PX", "[A-Z0-9]{8,}"), None)],
    "sf-express": [(_prefixed("SF", r"\d{12,13}"), None)],
}


def check_digit_ok(carrier: str, number: str) -> bool | None:
    """Whether ``number`` passes ``carrier``'s check digit.

    True: it has the shape of one of the carrier's check-digit formats and the digit is right.
    False: it has the shape of check-digit formats only, and the digit is wrong. None: nothing to
    check (a format without a check digit also fits, a national format we do not know, an
    aggregator).
    """
    checks = [check for shape, check in _FORMATS.get(carrier, []) if shape(number)]
    if any(check is not None and check(number) for check in checks):
        return True
    if not checks or any(check is None for check in checks):
        return None
    return False


# --- detection ----------------------------------------------------------------------------------


def _s10_candidates(number: str) -> Iterator[Candidate]:
    if not is_valid_s10(number):
        return
    country = number[-2:]
    post = DESTINATION_POSTS.get(country)
    if post is not None:
        yield Candidate(post, 0.9, f"UPU S10 number with a valid check digit issued in {country}")
        yield Candidate("upu", 0.7, "UPU S10 number: any post of the UPU network knows it")
    else:
        yield Candidate("upu", 0.85, f"UPU S10 number with a valid check digit issued in {country}")
    yield Candidate("yanwen", 0.3, "Yanwen also hands out S10 numbers of partner posts")


def _express_candidates(number: str) -> Iterator[Candidate]:
    if is_valid_ups(number):
        yield Candidate("ups", 0.95, "1Z number with a valid UPS check digit")
    if is_valid_dhl_express(number):
        yield Candidate("dhl", 0.9, "10 digits with a valid DHL Express mod-7 check digit")
    if is_valid_fedex_express(number):
        yield Candidate("fedex", 0.8, "12 digits with a valid FedEx Express check digit")
    if is_valid_fedex_ground(number):
        yield Candidate("fedex", 0.8, "15 digits with a valid FedEx Ground check digit")
    if is_valid_impb(number):
        yield Candidate("usps", 0.85, "USPS IMpb number with a valid mod-10 check digit")
        if number.startswith("92"):
            yield Candidate("fedex", 0.4, "FedEx SmartPost uses USPS IMpb numbers starting 92")
    elif number.isdigit() and len(number) in (20, 22):
        yield Candidate("fedex", 0.35, "20 or 22 digits: FedEx SmartPost / door-tag pattern")
    # LX is also the S10 service code of ePackets; as S10 only Deutsche Post's own are DHL's.
    prefixed = number.startswith(("JJD", "GM", "LX"))
    if prefixed and is_valid_s10(number) and not number.endswith("DE"):
        prefixed = False
    if prefixed or (number.isdigit() and len(number) in (12, 20)):
        yield Candidate("dhl", 0.5, "DHL Paket / eCommerce number pattern")


def _prefix_candidates(number: str) -> Iterator[Candidate]:
    rules = (
        ("yunexpress", 0.9, "YunExpress: YT + 16 digits"),
        ("cainiao", 0.9, "Cainiao: LP + 14 digits"),
        ("sf-express", 0.85, "SF Express: SF + 12 or 13 digits"),
        ("4px", 0.9, "4PX: 4PX prefix"),
        ("yanwen", 0.7, "Yanwen: UG or YW prefix"),
    )
    for carrier, confidence, reason in rules:
        if any(shape(number) for shape, check in _FORMATS[carrier] if check is None):
            yield Candidate(carrier, confidence, reason)


def detect(number: str) -> list[Candidate]:
    """Ranked carrier candidates among the supported carriers, best first, one per carrier."""
    found: list[Candidate] = [
        *_s10_candidates(number),
        *_express_candidates(number),
        *_prefix_candidates(number),
    ]
    best: dict[str, Candidate] = {}
    for candidate in found:
        if candidate.carrier not in CARRIER_IDS:
            continue
        if (
            candidate.carrier not in best
            or candidate.confidence > best[candidate.carrier].confidence
        ):
            best[candidate.carrier] = candidate
    return sorted(best.values(), key=lambda c: -c.confidence)


# --- numbers in free text -----------------------------------------------------------------------

# Carrier names as scan texts write them; a name next to a number raises the confidence.
_NAMES: tuple[tuple[str, str], ...] = (
    ("usps", r"(?i:\busps\b|united states postal|u\.s\. postal)"),
    ("royal-mail", r"(?i:royal\s*mail|parcelforce)"),
    ("la-poste", r"(?i:la\s*poste|colissimo)"),
    ("australia-post", r"(?i:australia\s*post|auspost)"),
    ("canada-post", r"(?i:canada\s*post|postes\s*canada)"),
    ("china-post", r"(?i:china\s*post|china\s*ems)"),
    ("ups", r"\bUPS\b"),  # case-sensitive: "pick-ups" is not UPS
    ("fedex", r"(?i:\bfed\s*ex\b)"),
    ("dhl", r"(?i:\bdhl\b)"),
    ("yanwen", r"(?i:yanwen)"),
    ("yunexpress", r"(?i:yun\s*express)"),
    ("cainiao", r"(?i:cainiao)"),
    ("4px", r"(?i:\b4px\b)"),
    ("sf-express", r"(?i:\bsf\s*express\b)"),
)
_NAME_PATTERNS = tuple((carrier, re.compile(p)) for carrier, p in _NAMES)
_TOKEN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{10,40}(?![A-Za-z0-9])")
# Long numbers printed in groups ("9400 1118 9922 3197 4284 90").
_GROUPED = re.compile(r"(?<![A-Za-z0-9])\d{4}(?: \d{2,4}){3,5}(?![A-Za-z0-9])")


def carrier_named_in(text: str) -> list[str]:
    """Carrier ids whose name the text mentions, in the order of the text."""
    hits = [(m.start(), carrier) for carrier, p in _NAME_PATTERNS if (m := p.search(text))]
    return [carrier for _, carrier in sorted(hits)]


def _strong(number: str) -> bool:
    """Formats whose check digit is strong enough to trust a number without a carrier's name."""
    return is_valid_s10(number) or is_valid_ups(number) or is_valid_impb(number)


def find_numbers(text: str, skip: Collection[str] = ()) -> list[FoundNumber]:
    """Tracking numbers in free text that pass a carrier's check digit, each with that carrier.

    A number next to a carrier's name is attributed to that carrier if it passes its check digit.
    Without a name only strong formats (S10, UPS 1Z, USPS IMpb) are accepted: 10, 12 and 15 digits
    pass a DHL or FedEx check by chance too often (phone and order numbers). Formats without a check
    digit are never read from text. Carriers in ``skip`` (the event's own) are not attributed.
    """
    named = [c for c in carrier_named_in(text) if c not in skip]
    tokens = [m.group(0) for m in _TOKEN.finditer(text)]
    tokens += [m.group(0).replace(" ", "") for m in _GROUPED.finditer(text)]
    found: dict[str, FoundNumber] = {}
    for number in (t.upper() for t in tokens):
        if number in found:
            continue
        carrier = next((c for c in named if check_digit_ok(c, number)), None)
        if carrier is not None:
            reason = f"the text names {carrier} next to a number passing its check digit"
            found[number] = FoundNumber(carrier, number, 0.7, reason, named=True)
        elif _strong(number):
            best = next(
                (
                    c.carrier
                    for c in detect(number)
                    if c.carrier not in skip and check_digit_ok(c.carrier, number)
                ),
                None,
            )
            if best is not None:
                reason = f"a number in the text passes the {best} check digit"
                found[number] = FoundNumber(best, number, 0.5, reason)
    return list(found.values())

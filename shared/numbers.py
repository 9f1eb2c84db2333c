"""Tracking-number hygiene and carrier detection from the number alone.

Formats overlap, so detection returns ranked candidates; a merchant can always name the carrier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import InvalidInput

# The carrier ids this build supports; tests check it against the adapter registry.
CARRIER_IDS: tuple[str, ...] = ("dhl",)

_ALLOWED = re.compile(r"^[A-Z0-9]{6,40}$")
_S10 = re.compile(r"^([A-Z]{2})(\d{8})(\d)([A-Z]{2})$")
_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


@dataclass(frozen=True)
class Candidate:
    carrier: str
    confidence: float
    reason: str


def normalise(raw: str) -> str:
    """Upper-case, without spaces or hyphens; refuses anything that cannot be a tracking number."""
    number = re.sub(r"[\s-]", "", raw or "").upper()
    if not _ALLOWED.match(number):
        raise InvalidInput(
            f"malformed tracking number {raw[:60]!r}: use 6 to 40 letters and digits"
        )
    return number


def s10_check_digit(serial: str) -> int:
    total = sum(int(d) * w for d, w in zip(serial, _S10_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: 0, 11: 5}.get(check, check)


def is_valid_s10(number: str) -> bool:
    match = _S10.match(number)
    return bool(match) and s10_check_digit(match.group(2)) == int(match.group(3))  # type: ignore[union-attr]


def is_valid_dhl_express(number: str) -> bool:
    return len(number) == 10 and number.isdigit() and int(number[:9]) % 7 == int(number[9])


def detect(number: str) -> list[Candidate]:
    """Ranked carrier candidates among the supported carriers, best first."""
    found: list[Candidate] = []
    if is_valid_dhl_express(number):
        found.append(Candidate("dhl", 0.9, "10 digits with a valid DHL Express mod-7 check digit"))
    elif number.startswith(("JJD", "GM", "LX")) or (number.isdigit() and len(number) in (12, 20)):
        found.append(Candidate("dhl", 0.5, "DHL Paket / eCommerce number pattern"))
    return sorted((c for c in found if c.carrier in CARRIER_IDS), key=lambda c: -c.confidence)

"""Tracking numbers for scripted journeys, each in its carrier's format with a valid check digit.

Every function maps a seed to a number deterministically (the same seed, the same number), so a
journey restarted with the same first number gets the same numbers on every leg. The check digits
follow reference/tracking-standards.md; ``shared.numbers`` is what the product validates them with.
"""

from __future__ import annotations

from services.simulator.journeys import valid_dhl_express_number

__all__ = [
    "cainiao_number",
    "dhl_express_number",
    "fedex_express_number",
    "fourpx_number",
    "s10_number",
    "sf_express_number",
    "ups_number",
]

_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_FEDEX_WEIGHTS = (3, 1, 7) * 4


def _digits(seed: int, length: int, salt: int) -> str:
    """``length`` digits spread over the range (multiplier coprime with 10, so seeds never collide
    below ``10**length``)."""
    return f"{(seed * 7_919 + salt) % 10**length:0{length}d}"


def s10_number(service: str, country: str, seed: int) -> str:
    """UPU S10: two service letters, eight digits, the mod-11 check digit, the origin country."""
    serial = _digits(seed, 8, 40_213_577)
    check = 11 - sum(int(d) * w for d, w in zip(serial, _S10_WEIGHTS, strict=True)) % 11
    return f"{service}{serial}{ {10: 0, 11: 5}.get(check, check) }{country}"


def ups_number(seed: int) -> str:
    """``1Z`` + shipper + service + package, then the mod-10 check over the 15 after ``1Z``."""
    body = "A9E4R6" + "66" + _digits(seed, 7, 3_170_211)
    total = 0
    for i, char in enumerate(reversed(body)):
        value = int(char) if char.isdigit() else (ord(char) - 63) % 10
        total += value * (1 if i % 2 == 0 else 2)
    return f"1Z{body}{(10 - total % 10) % 10}"


def fedex_express_number(seed: int) -> str:
    """12 digits: weights 3 1 7 over the first 11, the sum mod 11, then mod 10."""
    body = "7" + _digits(seed, 10, 8_812_004_517)
    total = sum(int(d) * w for d, w in zip(body, _FEDEX_WEIGHTS, strict=False))
    return body + str(total % 11 % 10)


def dhl_express_number(seed: int) -> str:
    return valid_dhl_express_number(seed)


def fourpx_number(seed: int) -> str:
    return f"4PX300{_digits(seed, 10, 1_250_007_331)}CN"


def cainiao_number(seed: int) -> str:
    return f"LP00{_digits(seed, 12, 574_120_336_909)}"


def sf_express_number(seed: int) -> str:
    return f"SF1{_digits(seed, 11, 40_371_229_851)}"

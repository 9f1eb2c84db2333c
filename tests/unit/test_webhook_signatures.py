"""Carrier webhook signature schemes: known-answer vectors and every way a forgery can differ.

The expected values were computed outside Python with coreutils/OpenSSL:
``printf '%s/%s' "$BODY" "$KEY" | sha256sum`` and
``printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" [-binary | base64]``.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.carriers.webhook_signatures import (
    SCHEMES,
    aftership_signature,
    easypost_signature,
    track17_signature,
)

TRACK17_BODY = b'{"event":"TRACKING_UPDATED","data":{"number":"LX123456785CN"}}'
TRACK17_KEY = "demo-17track-key"
TRACK17_SIGN = "2d579a4aa002eacc99632c9f873653215cf11d0dae3018f4c3d6eefda7719148"

AFTERSHIP_BODY = (
    b'{"ts":1741614420,"event":"tracking_update","msg":{"tracking_number":"YT2503100000001"}}'
)
AFTERSHIP_SECRET = "aftership-demo-secret"
AFTERSHIP_SIGN = "ccDbj/Trsei5nk0eIDLlEd9srcSzjNW6i9Me46fXA6U="

EASYPOST_BODY = (
    b'{"object":"Event","description":"tracker.updated",'
    b'"result":{"object":"Tracker","tracking_code":"EZ4000000004"}}'
)
EASYPOST_SECRET = "my_fi_secret"
EASYPOST_SIGN = "hmac-sha256-hex=67c7f7b1c8e8a2ff84455fb60c2f3495966ed2f1a4f3e00e6fe2ec180e40a84c"

VECTORS = [
    ("17track", TRACK17_BODY, TRACK17_KEY, "sign", TRACK17_SIGN),
    ("aftership", AFTERSHIP_BODY, AFTERSHIP_SECRET, "aftership-hmac-sha256", AFTERSHIP_SIGN),
    ("easypost", EASYPOST_BODY, EASYPOST_SECRET, "X-Hmac-Signature", EASYPOST_SIGN),
]


def test_known_answer_vectors() -> None:
    assert track17_signature(TRACK17_BODY, TRACK17_KEY) == TRACK17_SIGN
    assert aftership_signature(AFTERSHIP_BODY, AFTERSHIP_SECRET) == AFTERSHIP_SIGN
    assert easypost_signature(EASYPOST_BODY, EASYPOST_SECRET) == EASYPOST_SIGN


@pytest.mark.parametrize(("carrier", "body", "secret", "header", "value"), VECTORS)
def test_the_real_signature_verifies(
    carrier: str, body: bytes, secret: str, header: str, value: str
) -> None:
    assert SCHEMES[carrier].verify(body, secret, {header: value})
    assert SCHEMES[carrier].verify(body, secret, {header.upper(): f"  {value} "})


@pytest.mark.parametrize(("carrier", "body", "secret", "header", "value"), VECTORS)
def test_signed_headers_round_trip(
    carrier: str, body: bytes, secret: str, header: str, value: str
) -> None:
    headers = SCHEMES[carrier].signed_headers(body, secret)
    assert list(headers.values()) == [value]
    assert next(iter(headers)).lower() == header.lower()


@pytest.mark.parametrize(("carrier", "body", "secret", "header", "value"), VECTORS)
def test_tampered_body_fails(
    carrier: str, body: bytes, secret: str, header: str, value: str
) -> None:
    scheme = SCHEMES[carrier]
    for tampered in (body + b" ", body[:-1], b"", body.upper(), body.replace(b'"', b"'", 1)):
        assert not scheme.verify(tampered, secret, {header: value})


@pytest.mark.parametrize(("carrier", "body", "secret", "header", "value"), VECTORS)
def test_wrong_secret_fails(
    carrier: str, body: bytes, secret: str, header: str, value: str
) -> None:
    scheme = SCHEMES[carrier]
    for wrong in (secret + "x", secret[:-1], secret.upper(), " " + secret):
        assert not scheme.verify(body, wrong, {header: value})
    assert not scheme.verify(body, "", {header: value})
    assert not scheme.verify(body, None, {header: value})


@pytest.mark.parametrize(("carrier", "body", "secret", "header", "value"), VECTORS)
def test_missing_or_mangled_header_fails(
    carrier: str, body: bytes, secret: str, header: str, value: str
) -> None:
    scheme = SCHEMES[carrier]
    assert not scheme.verify(body, secret, {})
    assert not scheme.verify(body, secret, {"x-other": value})
    for mangled in ("", value[:-2], value + "00", value[::-1], "é" * len(value)):
        assert not scheme.verify(body, secret, {header: mangled})


def test_tampered_timestamps_inside_the_signed_body_fail() -> None:
    """No scheme signs a separate timestamp: the body's own times are what an attacker would move."""
    doc = json.loads(AFTERSHIP_BODY)
    doc["ts"] += 1
    moved = json.dumps(doc, separators=(",", ":")).encode()
    assert not SCHEMES["aftership"].verify(
        moved, AFTERSHIP_SECRET, {"aftership-hmac-sha256": AFTERSHIP_SIGN}
    )
    event = {"object": "Event", "created_at": "2025-03-10T16:00:04.000Z"}
    body = json.dumps(event).encode()
    signature = easypost_signature(body, EASYPOST_SECRET)
    later = json.dumps({**event, "created_at": "2025-03-10T16:05:04.000Z"}).encode()
    assert not SCHEMES["easypost"].verify(later, EASYPOST_SECRET, {"x-hmac-signature": signature})


def test_track17_is_sha256_of_body_slash_key_not_an_hmac() -> None:
    assert track17_signature(b"body", "key") != aftership_signature(b"body", "key")
    assert track17_signature(b"a", "b/c") == track17_signature(b"a/b", "c")  # plain concatenation


def test_track17_hex_is_compared_without_regard_to_case() -> None:
    headers = {"sign": TRACK17_SIGN.upper()}
    assert SCHEMES["17track"].verify(TRACK17_BODY, TRACK17_KEY, headers)


def test_aftership_accepts_either_header_name_and_base64_is_exact() -> None:
    scheme = SCHEMES["aftership"]
    assert scheme.verify(
        AFTERSHIP_BODY, AFTERSHIP_SECRET, {"x-aftership-hmac-sha256": AFTERSHIP_SIGN}
    )
    both = {"aftership-hmac-sha256": "forged", "x-aftership-hmac-sha256": AFTERSHIP_SIGN}
    assert scheme.verify(AFTERSHIP_BODY, AFTERSHIP_SECRET, both)
    assert not scheme.verify(
        AFTERSHIP_BODY, AFTERSHIP_SECRET, {"aftership-hmac-sha256": AFTERSHIP_SIGN.lower()}
    )


def test_easypost_secret_is_nfkd_normalised_and_prefix_required() -> None:
    ligature = "my_\ufb01_secret"  # "ﬁ" ligature: NFKD turns it into "fi"
    assert easypost_signature(EASYPOST_BODY, ligature) == EASYPOST_SIGN
    composed, decomposed = "s\u00e9cret", "se\u0301cret"
    assert easypost_signature(EASYPOST_BODY, composed) == easypost_signature(
        EASYPOST_BODY, decomposed
    )
    bare_hex = EASYPOST_SIGN.removeprefix("hmac-sha256-hex=")
    assert not SCHEMES["easypost"].verify(
        EASYPOST_BODY, EASYPOST_SECRET, {"x-hmac-signature": bare_hex}
    )


@given(
    body=st.binary(max_size=300), secret=st.text(min_size=1, max_size=40), flip=st.integers(0, 299)
)
def test_any_single_byte_change_fails(body: bytes, secret: str, flip: int) -> None:
    for carrier, scheme in SCHEMES.items():
        headers = scheme.signed_headers(body, secret)
        assert scheme.verify(body, secret, headers), carrier
        if body:
            position = flip % len(body)
            changed = body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1 :]
            assert not scheme.verify(changed, secret, headers), carrier

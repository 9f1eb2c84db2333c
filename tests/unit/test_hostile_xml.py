"""Hostile XML handed to every adapter (the XML carriers and the JSON ones alike): entity
expansion bombs, external entities and external DTDs. Each must come back quickly as a parse
error, with no event, no exception and nothing read from the file system or the network."""

from __future__ import annotations

import time

import pytest

from services.carriers.adapters import ADAPTERS

SECRET_FILE = "/etc/hostname"
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "lollollollollollollollollollol">'
    + b"".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(9)
    )
    + b"]><t><trace><acceptAddress>&j;</acceptAddress></trace></t>"
)
HOSTILE = {
    "billion_laughs": LAUGHS,
    "quadratic_blowup": (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x "'
        + b"x" * 50_000
        + b'">]><t>'
        + b"&x;" * 20_000
        + b"</t>"
    ),
    "external_file_entity": (
        f'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY e SYSTEM "file://{SECRET_FILE}">]>'
        "<t><trace><remark>&e;</remark></trace></t>"
    ).encode(),
    "external_http_entity": (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY e SYSTEM "http://127.0.0.1:9/x">]><t>&e;</t>'
    ),
    "parameter_entity": (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY % p SYSTEM "http://127.0.0.1:9/dtd"> %p;]><t/>'
    ),
    "external_dtd": b'<?xml version="1.0"?><!DOCTYPE t SYSTEM "http://127.0.0.1:9/t.dtd"><t/>',
}


def _secret() -> str:
    try:
        with open(SECRET_FILE) as f:
            return f.read().strip()
    except OSError:
        return "\0no-such-file"


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("carrier", sorted(ADAPTERS))
def test_hostile_xml_is_refused_quickly(carrier: str, kind: str) -> None:
    started = time.monotonic()
    result = ADAPTERS[carrier].parse(HOSTILE[kind], requested="LX123456785CN")
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"{carrier} spent {elapsed:.1f} s on {kind}"
    assert not result.events
    assert result.errors and all(e.code in ("malformed", "carrier_error") for e in result.errors)
    secret = _secret()
    assert not any(secret in e.message for e in result.errors)

"""SSRF rules for merchant webhook URLs: every refused address class, and what stays allowed."""

from __future__ import annotations

import ipaddress

import pytest

from services.webhooks import ssrf


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local address (cloud metadata"),
        ("169.254.0.1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("224.0.0.251", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("198.18.0.1", "benchmarking"),
        ("192.0.0.8", "IETF protocol"),
        ("192.0.2.1", "not a public address"),  # documentation (TEST-NET-1)
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "unique-local"),
        ("fd12:3456:789a::1", "unique-local"),
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("::ffff:8.8.8.8", "IPv4-mapped"),
        ("2002:7f00:1::", "embeds 127.0.0.1 is a loopback"),  # 6to4 of 127.0.0.1
        ("2002:a00:1::", "embeds 10.0.0.1 is a private"),
        ("64:ff9b::a9fe:a9fe", "embeds 169.254.169.254"),  # NAT64 of the metadata service
        ("2001:db8::1", "not a public address"),  # documentation
    ],
)
def test_refused_address_classes(address: str, why: str) -> None:
    reason = ssrf.refusal(ipaddress.ip_address(address))
    assert reason is not None and why in reason, reason


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert ssrf.refusal(ipaddress.ip_address(address)) is None


def test_loopback_setting_allows_loopback_and_nothing_else() -> None:
    allowed = [ipaddress.ip_address(a) for a in ("127.0.0.1", "127.9.9.9", "::1")]
    assert all(ssrf.refusal(a, allow_loopback=True) is None for a in allowed)
    for other in ("10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1", "0.0.0.0", "fe80::1"):
        assert ssrf.refusal(ipaddress.ip_address(other), allow_loopback=True) is not None


def test_a_mixed_dns_answer_is_refused() -> None:
    with pytest.raises(ssrf.ForbiddenAddress, match="10.0.0.7 is a private"):
        ssrf.check_addresses("shop.example", ["93.184.216.34", "10.0.0.7"], allow_loopback=False)
    ssrf.check_addresses("shop.example", ["93.184.216.34"], allow_loopback=False)
    with pytest.raises(ssrf.ForbiddenAddress, match="no address"):
        ssrf.check_addresses("shop.example", [], allow_loopback=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://shop.example/hook", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://127.0.0.1:25/", "http or https"),
        ("https://user:pw@shop.example/hook", "credentials"),
        ("https:///hook", "no host"),
        ("https://shop.example:99999/hook", "invalid URL"),
        ("https://shop.example/hook#frag", "fragment"),
    ],
)
def test_url_syntax(url: str, message: str) -> None:
    with pytest.raises(ssrf.UnsafeUrl, match=message):
        ssrf.parse_url(url)


def test_parse_url_defaults_ports() -> None:
    assert ssrf.parse_url("https://Shop.Example./x").port == 443
    assert ssrf.parse_url("http://shop.example/x").port == 80
    assert ssrf.parse_url("http://[2606:4700::1111]:8080/x").host == "2606:4700::1111"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.5/hook", "10.0.0.5 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://2130706433/hook", "loopback"),  # 127.0.0.1 as one decimal number
        ("http://0x7f.1/hook", "loopback"),
    ],
)
async def test_validate_url_refuses_internal_targets(url: str, message: str) -> None:
    with pytest.raises(ssrf.UnsafeUrl, match=message) as info:
        await ssrf.validate_url(url, allow_loopback=False)
    assert "public internet" in str(info.value)


async def test_validate_url_with_loopback_allowed() -> None:
    target = await ssrf.validate_url("http://127.0.0.1:9/hook", allow_loopback=True)
    assert (target.host, target.port) == ("127.0.0.1", 9)
    with pytest.raises(ssrf.UnsafeUrl, match="private"):
        await ssrf.validate_url("http://192.168.0.1/", allow_loopback=True)

"""SSRF protection for merchant webhook URLs.

A merchant chooses the URL we POST to, so without a check anyone with an API key could make our
servers call the cloud metadata service or an internal admin port. The rules:

- ``http`` or ``https`` only, no credentials in the URL, a host name or a canonical IP literal;
- every address the host resolves to must be public: loopback, private, link-local (with the
  169.254.169.254 metadata service), CGNAT ``100.64.0.0/10``, multicast, reserved, unspecified,
  IPv6 unique-local, link-local, site-local and IPv4-mapped addresses are refused, as are 6to4,
  Teredo and NAT64 addresses that embed a refused IPv4 address;
- the check runs again at every connection the sender opens, on the very addresses it connects to
  (``client.CheckedResolver``), so a DNS answer that changes after registration cannot point a
  delivery inside;
- ``allow_loopback`` (setting ``webhook_allow_loopback``) lets development and tests use a receiver
  on 127.0.0.0/8 or ::1; nothing else is ever allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4_CLASSES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a carrier-grade NAT (shared) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address (cloud metadata lives here)"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol assignment address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
)
_V6_CLASSES: tuple[tuple[str, str], ...] = (
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("::ffff:0:0/96", "an IPv4-mapped address"),
    ("fc00::/7", "a unique-local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
)
_CLASSES = [(ipaddress.ip_network(net), why) for net, why in _V4_CLASSES + _V6_CLASSES]
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeUrl(InvalidInput):
    """A webhook URL we refuse to call."""


class ForbiddenAddress(OSError):
    """A resolved address we refuse to connect to (an ``OSError`` so HTTP clients wrap it)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int


def refusal(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why ``ip`` may not be called, or None when it may."""
    if allow_loopback and any(ip in net for net in _LOOPBACK if net.version == ip.version):
        return None
    for net, why in _CLASSES:
        if net.version == ip.version and ip in net:
            return f"{ip} is {why}"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None and refusal(embedded) is not None:
            return f"{ip} embeds {refusal(embedded)}"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def parse_url(url: str) -> Target:
    """Syntax rules only (no DNS): scheme, host, port, no credentials."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"invalid URL {url[:200]!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("webhook URLs must use http or https")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("webhook URLs may not carry credentials; authenticate with the signature")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrl("webhook URL has no host")
    if parts.fragment:
        raise UnsafeUrl("webhook URLs may not have a #fragment")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80))


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_addresses(host: str, addresses: list[str], *, allow_loopback: bool) -> None:
    """Raise ``ForbiddenAddress`` unless every address is allowed (a mixed answer is refused)."""
    if not addresses:
        raise ForbiddenAddress(f"{host} resolves to no address")
    for address in addresses:
        why = refusal(ipaddress.ip_address(address.split("%", 1)[0]), allow_loopback=allow_loopback)
        if why is not None:
            raise ForbiddenAddress(f"refused to call {host}: {why}")


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


async def validate_url(url: str, *, allow_loopback: bool) -> Target:
    """What the API runs before storing a URL: syntax, then every resolved address."""
    target = parse_url(url)
    literal = ip_literal(target.host)
    try:
        if literal is not None:
            check_addresses(target.host, [str(literal)], allow_loopback=allow_loopback)
        else:
            addresses = await resolve(target.host, target.port)
            check_addresses(target.host, addresses, allow_loopback=allow_loopback)
    except ForbiddenAddress as exc:
        hint = "" if allow_loopback else " (webhook URLs must be reachable on the public internet)"
        raise UnsafeUrl(f"{exc}{hint}") from None
    except OSError as exc:
        raise UnsafeUrl(f"cannot resolve {target.host}: {exc}") from None
    return target

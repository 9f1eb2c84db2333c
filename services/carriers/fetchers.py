"""Every carrier the poller can ask, opened together: ``open_fetchers(settings)`` → carrier → client.

Each client reads its base URL and credentials from the settings (``<carrier>_base_url`` and the
carrier's own credential fields), which default to the local simulator and its sandboxes' demo
credentials. The aggregators (17TRACK, AfterShip, EasyPost) push to us and are never polled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from types import MappingProxyType
from typing import Any, Protocol

import httpx

from services.carriers.client import DhlClient
from services.carriers.clients.australia_post import AustraliaPostClient
from services.carriers.clients.cainiao import CainiaoClient
from services.carriers.clients.canada_post import CanadaPostClient
from services.carriers.clients.china_post import ChinaPostClient
from services.carriers.clients.fedex import FedexClient
from services.carriers.clients.fourpx import FourPxClient
from services.carriers.clients.la_poste import LaPosteClient
from services.carriers.clients.royal_mail import RoyalMailClient
from services.carriers.clients.sf_express import SfExpressClient
from services.carriers.clients.ups import UpsClient
from services.carriers.clients.upu import UpuClient
from services.carriers.clients.usps import UspsClient
from services.carriers.clients.yanwen import YanwenClient
from services.carriers.clients.yunexpress import YunExpressClient
from services.carriers.poller import Fetcher

__all__ = ["BASE_URL_SETTINGS", "POLL_CLIENTS", "PUSH_ONLY", "open_fetchers"]


class _ClientFactory(Protocol):
    def from_settings(self, settings: Any, http: httpx.AsyncClient | None = None) -> Any: ...


# carrier id → client class (each has ``from_settings(settings, http=None)``).
POLL_CLIENTS: Mapping[str, _ClientFactory] = MappingProxyType(
    {
        "dhl": DhlClient,
        "upu": UpuClient,
        "china-post": ChinaPostClient,
        "usps": UspsClient,
        "royal-mail": RoyalMailClient,
        "la-poste": LaPosteClient,
        "australia-post": AustraliaPostClient,
        "canada-post": CanadaPostClient,
        "ups": UpsClient,
        "fedex": FedexClient,
        "4px": FourPxClient,
        "yanwen": YanwenClient,
        "yunexpress": YunExpressClient,
        "cainiao": CainiaoClient,
        "sf-express": SfExpressClient,
    }
)
PUSH_ONLY = frozenset({"17track", "aftership", "easypost"})
# The settings holding each polled carrier's base URL ("4px" → "fourpx_base_url").
BASE_URL_SETTINGS: Mapping[str, str] = MappingProxyType(
    {c: ("fourpx" if c == "4px" else c.replace("-", "_")) + "_base_url" for c in POLL_CLIENTS}
)


@asynccontextmanager
async def open_fetchers(
    settings: Any, http: httpx.AsyncClient | None = None
) -> AsyncIterator[Mapping[str, Fetcher]]:
    """Every poll client, open; all of them are closed on exit, even if one fails to close.

    ``http`` lends one HTTP client to all of them (tests); by default each owns its own pool.
    """
    async with AsyncExitStack() as stack:
        fetchers: dict[str, Fetcher] = {}
        for carrier, factory in POLL_CLIENTS.items():
            client = factory.from_settings(settings, http=http)
            fetchers[carrier] = await stack.enter_async_context(client)
        yield MappingProxyType(fetchers)

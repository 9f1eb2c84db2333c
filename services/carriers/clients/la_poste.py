"""Poll client for La Poste / Colissimo Suivi v2.

``GET {base}/suivi/v2/idships/{id}?lang=fr_FR`` with the ``X-Okapi-Key`` header.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.carriers.client import FetchResult
from services.carriers.clients.base import (
    DEFAULT_SIMULATOR_URL,
    PollClient,
    quote_number,
    setting,
)

PATH = "/suivi/v2/idships"
DEMO_API_KEY = "demo-la-poste-okapi-key"


class LaPosteClient(PollClient):
    carrier_name = "La Poste"

    def __init__(self, base_url: str, api_key: str, *, lang: str = "fr_FR", **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._headers = {"X-Okapi-Key": api_key, "Accept": "application/json"}
        self._lang = lang

    @classmethod
    def from_settings(cls, settings: Any, http: httpx.AsyncClient | None = None) -> LaPosteClient:
        return cls(
            setting(settings, "la_poste_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "la_poste_api_key", DEMO_API_KEY),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        path = f"{PATH}/{quote_number(tracking_number)}"
        return await self._get(path, params={"lang": self._lang}, headers=self._headers)

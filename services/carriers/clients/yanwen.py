"""Poll client for the Yanwen tracking API.

``GET {base}/api/tracking?nums=a,b,c`` with the API key as the bare ``Authorization`` header (no
scheme). Unknown numbers and bad keys are answered inside HTTP 200; the adapter reads them.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.carriers.client import FetchResult
from services.carriers.clients.base import DEFAULT_SIMULATOR_URL, PollClient, setting

PATH = "/api/tracking"
DEMO_API_KEY = "demo-yanwen-key"


class YanwenClient(PollClient):
    carrier_name = "Yanwen"

    def __init__(self, base_url: str, api_key: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._headers = {"Authorization": api_key, "Accept": "application/json"}

    @classmethod
    def from_settings(cls, settings: Any, http: httpx.AsyncClient | None = None) -> YanwenClient:
        return cls(
            setting(settings, "yanwen_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "yanwen_api_key", DEMO_API_KEY),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        return await self._get(
            PATH, params={"nums": tracking_number.strip()}, headers=self._headers
        )

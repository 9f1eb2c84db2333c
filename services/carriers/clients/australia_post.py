"""Poll client for the Australia Post Shipping and Tracking API.

``GET {base}/shipping/v1/track?tracking_ids=..`` (up to 10 ids) with ``Account-Number`` and HTTP
Basic (API key, password).
"""

from __future__ import annotations

from typing import Any

import httpx

from services.carriers.client import FetchResult
from services.carriers.clients.base import (
    DEFAULT_SIMULATOR_URL,
    PollClient,
    basic_auth,
    setting,
)

PATH = "/shipping/v1/track"
DEMO_ACCOUNT = "0001234567"
DEMO_API_KEY = "demo-auspost-key"
DEMO_PASSWORD = "demo-auspost-password"


class AustraliaPostClient(PollClient):
    carrier_name = "Australia Post"

    def __init__(
        self, base_url: str, account_number: str, api_key: str, password: str, **kwargs: Any
    ) -> None:
        super().__init__(base_url, **kwargs)
        self._headers = {
            "Account-Number": account_number,
            "Authorization": basic_auth(api_key, password),
            "Accept": "application/json",
        }

    @classmethod
    def from_settings(
        cls, settings: Any, http: httpx.AsyncClient | None = None
    ) -> AustraliaPostClient:
        return cls(
            setting(settings, "australia_post_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "australia_post_account_number", DEMO_ACCOUNT),
            setting(settings, "australia_post_api_key", DEMO_API_KEY),
            setting(settings, "australia_post_password", DEMO_PASSWORD),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        params = {"tracking_ids": tracking_number.strip()}
        return await self._get(PATH, params=params, headers=self._headers)

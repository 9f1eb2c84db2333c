"""Poll client for the China Post / EMS ePacket partner API.

``GET {base}/partner/api/public/p/track/query/{en|cn}/{number}`` with the headers
``version: international_eub_us_1.1`` and ``authenticate: <token>``; the answer is XML.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from services.carriers.client import FetchResult
from services.carriers.clients.base import (
    DEFAULT_SIMULATOR_URL,
    PollClient,
    quote_number,
    setting,
)

PATH = "/partner/api/public/p/track/query"
API_VERSION = "international_eub_us_1.1"
DEMO_TOKEN = "demo-china-post-token"


class ChinaPostClient(PollClient):
    carrier_name = "China Post"

    def __init__(
        self, base_url: str, token: str, *, lang: Literal["en", "cn"] = "en", **kwargs: Any
    ) -> None:
        super().__init__(base_url, **kwargs)
        self._headers = {"version": API_VERSION, "authenticate": token, "Accept": "application/xml"}
        self._lang = lang

    @classmethod
    def from_settings(cls, settings: Any, http: httpx.AsyncClient | None = None) -> ChinaPostClient:
        return cls(
            setting(settings, "china_post_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "china_post_token", DEMO_TOKEN),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        path = f"{PATH}/{self._lang}/{quote_number(tracking_number)}"
        return await self._get(path, headers=self._headers)

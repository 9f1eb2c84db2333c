"""Poll client for Canada Post Tracking v2.

``GET {base}/vis/track/pin/{pin}/detail`` with HTTP Basic (API user, password) and
``Accept: application/vnd.cpc.track-v2+xml``.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.carriers.client import FetchResult
from services.carriers.clients.base import (
    DEFAULT_SIMULATOR_URL,
    PollClient,
    basic_auth,
    quote_number,
    setting,
)

PATH = "/vis/track/pin"
MEDIA_TYPE = "application/vnd.cpc.track-v2+xml"
DEMO_USER = "demo-canada-post-user"
DEMO_PASSWORD = "demo-canada-post-password"


class CanadaPostClient(PollClient):
    carrier_name = "Canada Post"

    def __init__(
        self, base_url: str, user: str, password: str, *, language: str = "en-CA", **kwargs: Any
    ) -> None:
        super().__init__(base_url, **kwargs)
        self._headers = {
            "Authorization": basic_auth(user, password),
            "Accept": MEDIA_TYPE,
            "Accept-language": language,
        }

    @classmethod
    def from_settings(
        cls, settings: Any, http: httpx.AsyncClient | None = None
    ) -> CanadaPostClient:
        return cls(
            setting(settings, "canada_post_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "canada_post_user", DEMO_USER),
            setting(settings, "canada_post_password", DEMO_PASSWORD),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        path = f"{PATH}/{quote_number(tracking_number)}/detail"
        return await self._get(path, headers=self._headers)

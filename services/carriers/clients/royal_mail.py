"""Poll client for the Royal Mail Tracking API v2.

``GET {base}/mailpieces/v2/{mailPieceId}/events`` with ``X-IBM-Client-Id``,
``X-IBM-Client-Secret`` and ``X-Accept-RMG-Terms: yes``.
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

PATH = "/mailpieces/v2"
DEMO_CLIENT_ID = "demo-royal-mail-client"
DEMO_CLIENT_SECRET = "demo-royal-mail-secret"


class RoyalMailClient(PollClient):
    carrier_name = "Royal Mail"

    def __init__(self, base_url: str, client_id: str, client_secret: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._headers = {
            "X-IBM-Client-Id": client_id,
            "X-IBM-Client-Secret": client_secret,
            "X-Accept-RMG-Terms": "yes",
            "Accept": "application/json",
        }

    @classmethod
    def from_settings(cls, settings: Any, http: httpx.AsyncClient | None = None) -> RoyalMailClient:
        return cls(
            setting(settings, "royal_mail_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "royal_mail_client_id", DEMO_CLIENT_ID),
            setting(settings, "royal_mail_client_secret", DEMO_CLIENT_SECRET),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        path = f"{PATH}/{quote_number(tracking_number)}/events"
        return await self._get(path, headers=self._headers)

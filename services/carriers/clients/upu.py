"""Poll client for the UPU IPS Track and Trace REST API.

``GET {base}/IPSAPIService/TrackAndTraceService.svc/rest/Mailitems?ids=..&lang=en&token=..``:
the IPS API authorises every call with a token (a GUID) passed with the call.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.carriers.client import FetchResult
from services.carriers.clients.base import DEFAULT_SIMULATOR_URL, PollClient, setting

PATH = "/IPSAPIService/TrackAndTraceService.svc/rest/Mailitems"
DEMO_TOKEN = "00000000-0000-4000-8000-0000000000a1"


class UpuClient(PollClient):
    carrier_name = "UPU IPS"

    def __init__(self, base_url: str, token: str, *, lang: str = "en", **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._token = token
        self._lang = lang

    @classmethod
    def from_settings(cls, settings: Any, http: httpx.AsyncClient | None = None) -> UpuClient:
        return cls(
            setting(settings, "upu_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "upu_token", DEMO_TOKEN),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        params = {"ids": tracking_number.strip(), "lang": self._lang, "token": self._token}
        return await self._get(PATH, params=params, headers={"Accept": "application/json"})

"""Poll client for Cainiao's global tracking JSON.

``GET {base}/global/detail.json?mailNos=..&lang=en-US``: the public endpoint integrators use; it takes
no credentials. (Cainiao's signed "link" gateway has no documented tracking answer shape, so it is
not used for polling.)
"""

from __future__ import annotations

from typing import Any

import httpx

from services.carriers.client import FetchResult
from services.carriers.clients.base import DEFAULT_SIMULATOR_URL, PollClient, setting

PATH = "/global/detail.json"


class CainiaoClient(PollClient):
    carrier_name = "Cainiao"

    def __init__(self, base_url: str, *, lang: str = "en-US", **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._lang = lang

    @classmethod
    def from_settings(cls, settings: Any, http: httpx.AsyncClient | None = None) -> CainiaoClient:
        return cls(setting(settings, "cainiao_base_url", DEFAULT_SIMULATOR_URL), http=http)

    async def fetch(self, tracking_number: str) -> FetchResult:
        params = {"mailNos": tracking_number.strip(), "lang": self._lang}
        return await self._get(PATH, params=params, headers={"Accept": "application/json"})

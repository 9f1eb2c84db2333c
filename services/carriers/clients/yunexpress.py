"""Poll client for the YunExpress OMS API.

``GET {base}/api/Tracking/GetTrackInfo?OrderNumber=..`` with ``Authorization: Basic
base64("<customerCode>&<apiSecret>")`` (an ampersand, not HTTP Basic's colon). YunExpress reports
its rate limit inside HTTP 200 as envelope ``Code`` "10000": that answer is ``CarrierUnavailable``
like a 429, so the poller backs off instead of recording an error.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from services.carriers.client import CarrierUnavailable, FetchResult
from services.carriers.clients.base import DEFAULT_SIMULATOR_URL, PollClient, setting

PATH = "/api/Tracking/GetTrackInfo"
RATE_LIMITED = "10000"
DEMO_CUSTOMER_CODE = "C00001"
DEMO_API_SECRET = "demo-yunexpress-secret"


def authorization(customer_code: str, api_secret: str) -> str:
    token = base64.b64encode(f"{customer_code}&{api_secret}".encode()).decode("ascii")
    return f"Basic {token}"


class YunExpressClient(PollClient):
    carrier_name = "YunExpress"

    def __init__(self, base_url: str, customer_code: str, api_secret: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._headers = {
            "Authorization": authorization(customer_code, api_secret),
            "Accept": "application/json",
        }

    @classmethod
    def from_settings(
        cls, settings: Any, http: httpx.AsyncClient | None = None
    ) -> YunExpressClient:
        return cls(
            setting(settings, "yunexpress_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "yunexpress_customer_code", DEMO_CUSTOMER_CODE),
            setting(settings, "yunexpress_api_secret", DEMO_API_SECRET),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        params = {"OrderNumber": tracking_number.strip()}
        result = await self._get(PATH, params=params, headers=self._headers)
        if result.status_code == 200 and _envelope_code(result.body) == RATE_LIMITED:
            raise CarrierUnavailable("YunExpress rate limit (Code 10000)", None, result.status_code)
        return result


def _envelope_code(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    code = doc.get("Code") if isinstance(doc, dict) else None
    return str(code) if isinstance(code, str | int) else None

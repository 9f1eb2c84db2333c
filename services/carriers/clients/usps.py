"""Poll client for the USPS Tracking API v3, with the OAuth 2 client-credentials flow.

``POST {base}/oauth2/v3/token`` (JSON: ``grant_type=client_credentials``, client id and secret)
gives a bearer token, cached until a minute before it expires and fetched once for concurrent
polls; ``GET {base}/tracking/v3/tracking/{n}?expand=DETAIL`` uses it. A 401 on tracking (token
revoked or expired early) gets one new token and one retry. A token request the carrier refuses
(4xx) is returned as the ``FetchResult``: its OAuth error body is what the adapter reports.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.carriers.client import FetchResult
from services.carriers.clients.base import DEFAULT_SIMULATOR_URL, quote_number, setting
from services.carriers.clients.bearer import BearerClient

TOKEN_PATH = "/oauth2/v3/token"
TRACK_PATH = "/tracking/v3/tracking"
DEMO_CLIENT_ID = "demo-usps-client"
DEMO_CLIENT_SECRET = "demo-usps-secret"


class UspsClient(BearerClient):
    carrier_name = "USPS"

    def __init__(self, base_url: str, client_id: str, client_secret: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._credentials = {"client_id": client_id, "client_secret": client_secret}

    @classmethod
    def from_settings(cls, settings: Any, http: httpx.AsyncClient | None = None) -> UspsClient:
        return cls(
            setting(settings, "usps_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "usps_client_id", DEMO_CLIENT_ID),
            setting(settings, "usps_client_secret", DEMO_CLIENT_SECRET),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        path = f"{TRACK_PATH}/{quote_number(tracking_number)}"

        async def track(token: str) -> FetchResult:
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            return await self._get(path, params={"expand": "DETAIL"}, headers=headers)

        return await self._with_token(track)

    async def _request_token(self) -> FetchResult:
        body = {"grant_type": "client_credentials", **self._credentials}
        return await self._send(
            "POST", TOKEN_PATH, json=body, headers={"Accept": "application/json"}
        )

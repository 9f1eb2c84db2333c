"""Poll client for the UPS Track API, with UPS's OAuth client-credentials flow.

``POST {base}/security/v1/oauth/token`` with HTTP Basic ``client_id:client_secret`` and the form
``grant_type=client_credentials`` gives a bearer token (``expires_in`` is a string of seconds), cached
until a minute before it expires. ``GET {base}/api/track/v1/details/{inquiryNumber}`` sends it with
the required ``transId`` (unique per request) and ``transactionSrc`` headers.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from services.carriers.client import FetchResult
from services.carriers.clients.base import (
    DEFAULT_SIMULATOR_URL,
    basic_auth,
    quote_number,
    setting,
)
from services.carriers.clients.bearer import BearerClient

TOKEN_PATH = "/security/v1/oauth/token"
TRACK_PATH = "/api/track/v1/details"
DEMO_CLIENT_ID = "demo-ups-client"
DEMO_CLIENT_SECRET = "demo-ups-secret"
TRANSACTION_SRC = "throughline"
QUERY = {
    "locale": "en_US",
    "returnSignature": "false",
    "returnMilestones": "false",
    "returnPOD": "false",
}


class UpsClient(BearerClient):
    carrier_name = "UPS"

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        transaction_src: str = TRANSACTION_SRC,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url, **kwargs)
        self._basic = basic_auth(client_id, client_secret)
        self._source = transaction_src

    @classmethod
    def from_settings(cls, settings: Any, http: httpx.AsyncClient | None = None) -> UpsClient:
        return cls(
            setting(settings, "ups_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "ups_client_id", DEMO_CLIENT_ID),
            setting(settings, "ups_client_secret", DEMO_CLIENT_SECRET),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        path = f"{TRACK_PATH}/{quote_number(tracking_number)}"

        async def track(token: str) -> FetchResult:
            headers = {
                "Authorization": f"Bearer {token}",
                "transId": uuid.uuid4().hex,
                "transactionSrc": self._source,
                "Accept": "application/json",
            }
            return await self._get(path, params=QUERY, headers=headers)

        return await self._with_token(track)

    async def _request_token(self) -> FetchResult:
        return await self._send(
            "POST",
            TOKEN_PATH,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": self._basic, "Accept": "application/json"},
        )

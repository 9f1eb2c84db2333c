"""Poll client for the FedEx Track API, with FedEx's OAuth client-credentials flow.

``POST {base}/oauth/token`` (form ``grant_type=client_credentials&client_id=..&client_secret=..``)
gives a bearer token, cached until a minute before it expires. ``POST {base}/track/v1/trackingnumbers``
takes at most 30 numbers per call: ``fetch_many`` splits a longer list into batches of 30 and returns
one ``FetchResult`` per batch (each holds a ``completeTrackResults`` entry per number).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from services.carriers.client import FetchResult
from services.carriers.clients.base import DEFAULT_SIMULATOR_URL, setting
from services.carriers.clients.bearer import BearerClient

TOKEN_PATH = "/oauth/token"
TRACK_PATH = "/track/v1/trackingnumbers"
BATCH_LIMIT = 30
DEMO_CLIENT_ID = "demo-fedex-client"
DEMO_CLIENT_SECRET = "demo-fedex-secret"


class FedexClient(BearerClient):
    carrier_name = "FedEx"

    def __init__(self, base_url: str, client_id: str, client_secret: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }

    @classmethod
    def from_settings(cls, settings: Any, http: httpx.AsyncClient | None = None) -> FedexClient:
        return cls(
            setting(settings, "fedex_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "fedex_client_id", DEMO_CLIENT_ID),
            setting(settings, "fedex_client_secret", DEMO_CLIENT_SECRET),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        (result,) = await self.fetch_many([tracking_number])
        return result

    async def fetch_many(self, tracking_numbers: Sequence[str]) -> list[FetchResult]:
        """One request per 30 numbers, in order; an empty list asks nothing."""
        numbers = [n.strip() for n in tracking_numbers if n.strip()]
        batches = [numbers[i : i + BATCH_LIMIT] for i in range(0, len(numbers), BATCH_LIMIT)]
        return [await self._track(batch) for batch in batches]

    async def _track(self, numbers: list[str]) -> FetchResult:
        body = {
            "includeDetailedScans": True,
            "trackingInfo": [{"trackingNumberInfo": {"trackingNumber": n}} for n in numbers],
        }

        async def track(token: str) -> FetchResult:
            headers = {
                "Authorization": f"Bearer {token}",
                "X-locale": "en_US",
                "x-customer-transaction-id": str(uuid.uuid4()),
                "Accept": "application/json",
            }
            return await self._send("POST", TRACK_PATH, json=body, headers=headers)

        return await self._with_token(track)

    async def _request_token(self) -> FetchResult:
        return await self._send(
            "POST", TOKEN_PATH, data=self._form, headers={"Accept": "application/json"}
        )

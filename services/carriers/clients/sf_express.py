"""Poll client for the SF Express open platform (route query ``EXP_RECE_SEARCH_ROUTES``).

``POST {base}/std/service`` with the form fields ``partnerID``, ``requestID`` (unique),
``serviceCode``, ``timestamp`` (Unix milliseconds), ``msgData`` (the JSON query) and ``msgDigest`` =
base64(md5(urlencode(msgData + timestamp + checkword))), the URL-encoding (``quote_plus``) as SF's
own SDKs do it. The platform answers HTTP 200 with ``apiResultCode``: "A1005" (traffic control),
"A1009" (service unreachable) and "A1099" (system error) are ``CarrierUnavailable``; every other
answer goes to the adapter.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import httpx

from services.carriers.client import CarrierUnavailable, FetchResult
from services.carriers.clients.base import DEFAULT_SIMULATOR_URL, PollClient, setting

PATH = "/std/service"
SERVICE_CODE = "EXP_RECE_SEARCH_ROUTES"
RETRYABLE = frozenset({"A1005", "A1009", "A1099"})
DEMO_PARTNER_ID = "DEMO_SF_PARTNER"
DEMO_CHECKWORD = "demo-sf-checkword"


def digest(msg_data: str, timestamp: str, checkword: str) -> str:
    """SF's ``msgDigest``."""
    plain = quote_plus(msg_data + timestamp + checkword)
    return base64.b64encode(hashlib.md5(plain.encode("utf-8")).digest()).decode("ascii")


class SfExpressClient(PollClient):
    carrier_name = "SF Express"

    def __init__(
        self,
        base_url: str,
        partner_id: str,
        checkword: str,
        *,
        language: str = "1",
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url, **kwargs)
        self._partner = partner_id
        self._checkword = checkword
        self._language = language  # "0" Chinese, "1" English
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Any, http: httpx.AsyncClient | None = None) -> SfExpressClient:
        return cls(
            setting(settings, "sf_express_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "sf_express_partner_id", DEMO_PARTNER_ID),
            setting(settings, "sf_express_checkword", DEMO_CHECKWORD),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        query = {
            "language": self._language,
            "trackingType": "1",
            "trackingNumber": [tracking_number.strip()],
            "methodType": "1",
        }
        msg_data = json.dumps(query, separators=(",", ":"))
        timestamp = str(int(self._clock() * 1000))
        form = {
            "partnerID": self._partner,
            "requestID": str(uuid.uuid4()),
            "serviceCode": SERVICE_CODE,
            "timestamp": timestamp,
            "msgDigest": digest(msg_data, timestamp, self._checkword),
            "msgData": msg_data,
        }
        result = await self._send("POST", PATH, data=form, headers={"Accept": "application/json"})
        code = _api_code(result.body) if result.status_code == 200 else None
        if code in RETRYABLE:
            raise CarrierUnavailable(f"SF Express answered {code}", None, result.status_code)
        return result


def _api_code(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    code = doc.get("apiResultCode") if isinstance(doc, dict) else None
    return code if isinstance(code, str) else None

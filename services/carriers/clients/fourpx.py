"""Poll client for the 4PX open platform (``tr.order.tracking.get``).

``POST {base}/router/api/service?method=tr.order.tracking.get&v=1.0&app_key=..&timestamp=..
&format=json&access_token=&sign=..`` with the JSON body ``{"deliveryOrderNo": ".."}``. ``sign`` is
``upper(md5("app_key" + key + "format" + "json" + "method" + method + "timestamp" + ts + "v" +
"1.0" + body + secret))`` over the exact body bytes sent, so the body is serialised once and sent
as is. ``timestamp`` is Unix milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from services.carriers.client import CarrierUnavailable, FetchResult
from services.carriers.clients.base import DEFAULT_SIMULATOR_URL, USER_AGENT, PollClient, setting

PATH = "/router/api/service"
METHOD = "tr.order.tracking.get"
VERSION = "1.0"
DEMO_APP_KEY = "demo-4px-app-key"
DEMO_APP_SECRET = "demo-4px-app-secret"


def sign(app_key: str, secret: str, timestamp: str, body: str, method: str = METHOD) -> str:
    """4PX's request signature."""
    plain = f"app_key{app_key}formatjsonmethod{method}timestamp{timestamp}v{VERSION}{body}{secret}"
    return hashlib.md5(plain.encode("utf-8")).hexdigest().upper()


class FourPxClient(PollClient):
    carrier_name = "4PX"

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        *,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url, **kwargs)
        self._key = app_key
        self._secret = app_secret
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Any, http: httpx.AsyncClient | None = None) -> FourPxClient:
        return cls(
            setting(settings, "fourpx_base_url", DEFAULT_SIMULATOR_URL),
            setting(settings, "fourpx_app_key", DEMO_APP_KEY),
            setting(settings, "fourpx_app_secret", DEMO_APP_SECRET),
            http=http,
        )

    async def fetch(self, tracking_number: str) -> FetchResult:
        body = json.dumps({"deliveryOrderNo": tracking_number.strip()}, separators=(",", ":"))
        timestamp = str(int(self._clock() * 1000))
        params = {
            "method": METHOD,
            "v": VERSION,
            "app_key": self._key,
            "timestamp": timestamp,
            "format": "json",
            "access_token": "",
            "sign": sign(self._key, self._secret, timestamp, body),
        }
        return await self._post_raw(params, body.encode("utf-8"))

    async def _post_raw(self, params: dict[str, str], body: bytes) -> FetchResult:
        """POST ``body`` byte for byte (the signature covers it), with the base class's rules."""
        request = self._http.build_request(
            "POST",
            self._base + PATH,
            params=params,
            content=body,
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json;charset=UTF-8"},
            timeout=self._timeout,
        )
        try:
            response = await self._http.send(request, stream=True)
            try:
                self._raise_if_unavailable(response)
                data = await self._read_capped(response)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise CarrierUnavailable(f"4PX unreachable: {type(exc).__name__}: {exc}") from exc
        content_type = response.headers.get("content-type", "application/octet-stream")
        return FetchResult(response.status_code, data, content_type)

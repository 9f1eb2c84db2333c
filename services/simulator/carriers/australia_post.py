"""Sandbox: Australia Post Shipping and Tracking API.

``GET /shipping/v1/track?tracking_ids=a,b`` (at most 10) with ``Account-Number`` and HTTP Basic;
bad credentials are 401 ``{"errors": [..]}``. Each id is a ``tracking_results`` entry: found ones
carry ``trackable_items[].events[]`` newest first, ``{date, description, location}`` and no codes;
unknown ones carry ``errors[{code: "ESB-10001", name: "Invalid tracking ID"}]`` inside HTTP 200.
Australian scans are written "SUBURB STATE" with the place's real offset; scans abroad get
Australia Post's system offset (``+11:00``) stamped on their local wall time, as the real API does.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from services.simulator.carriers import CarrierScript, Scan, ScriptState, failure_response

CARRIER = "australia-post"
DEFAULT_CREDENTIALS = {
    "account_number": "0001234567",
    "api_key": "demo-auspost-key",
    "password": "demo-auspost-password",
}
SYSTEM_OFFSET = "+11:00"
MAX_IDS = 10
FROM_UPU: dict[str, str] = {
    "EMA": "Shipping information received by Australia Post",
    "EMC": "International departure",
    "EMD": "Arrived in Australia",
    "EDB": "Awaiting customs clearance",
    "EDC": "Cleared by customs",
    "EDD": "Processed through facility",
    "EMG": "Received at delivery facility",
    "EDG": "Onboard for delivery",
    "EMH": "Attempted delivery",
    "EDH": "Awaiting collection",
    "EMI": "Delivered",
}
COUNTRY_NAMES = {"US": "UNITED STATES", "CN": "CHINA", "GB": "UNITED KINGDOM", "NZ": "NEW ZEALAND"}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()

    @api.get("/shipping/v1/track")
    async def track(
        tracking_ids: Annotated[str | None, Query()] = None,
        account_number: Annotated[str | None, Header(alias="Account-Number")] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            body = b'{"errors":[{"code":"API_500","name":"Service unavailable"}]}'
            return failure_response(failure, body, "application/json")
        expected = state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)
        basic = base64.b64encode(f"{expected['api_key']}:{expected['password']}".encode()).decode()
        if account_number != expected["account_number"] or authorization != f"Basic {basic}":
            return _json({"errors": [{"code": "API_002", "name": "Unauthorised",
                                      "message": "Invalid credentials"}]}, 401)  # fmt: skip
        ids = [i.strip() for i in (tracking_ids or "").split(",") if i.strip()]
        if not ids or len(ids) > MAX_IDS:
            return _json(
                {"errors": [{"code": "ESB-10003", "name": "Between 1 and 10 tracking IDs"}]}, 400
            )
        return _json({"tracking_results": [_result(state, i) for i in ids]})

    return api


def _result(state: ScriptState, tracking_id: str) -> dict[str, Any]:
    script = state.find(CARRIER, tracking_id)
    visible = state.visible(script) if script is not None else []
    if script is None or not visible:
        return {"tracking_id": tracking_id,
                "errors": [{"code": "ESB-10001", "name": "Invalid tracking ID"}]}  # fmt: skip
    events = [_event(scan, local) for scan, local in reversed(visible)]
    status = "Delivered" if events[0]["description"].startswith("Delivered") else "In transit"
    item = {"article_id": script.tracking_number, "product_type": "International",
            "events": events, "status": status}  # fmt: skip
    return {"tracking_id": tracking_id, "status": status, "trackable_items": [item]}


def _event(scan: Scan, local: datetime) -> dict[str, Any]:
    wall = local.replace(tzinfo=None).isoformat(timespec="seconds")
    if scan.country == "AU":
        stamp, place = local.isoformat(timespec="seconds"), (scan.city or "").upper()
    else:
        name = COUNTRY_NAMES.get(scan.country or "", scan.country or "")
        stamp, place = wall + SYSTEM_OFFSET, ", ".join(p for p in (scan.city, name) if p).upper()
    event = {"date": stamp, "description": FROM_UPU.get(scan.code, scan.text)}
    if place:
        event["location"] = place
    return event


def demo_script(number: str, started_at: datetime) -> CarrierScript:
    """Shenzhen → Sydney via Los Angeles: the +11:00 stamped on the US scan, Perth and Sydney."""
    sz, la, syd, per = "Asia/Shanghai", "America/Los_Angeles", "Australia/Sydney", "Australia/Perth"

    def at(hours: float, code: str, city: str | None, country: str, zone: str) -> Scan:
        return Scan(timedelta(hours=hours), code, "", city, country, zone)

    return CarrierScript(
        tracking_number=number,
        started_at=started_at,
        scans=[
            at(0, "EMA", None, "CN", sz),
            at(30, "EMC", "LOS ANGELES", "US", la),
            at(60, "EMD", "SYDNEY NSW", "AU", syd),
            at(70, "EDC", "SYDNEY NSW", "AU", syd),
            at(80, "EDD", "PERTH WA", "AU", per),
            at(100, "EDG", "ALEXANDRIA NSW", "AU", syd),
            at(104, "EMI", "ALEXANDRIA NSW 2015", "AU", syd),
        ],
    )  # fmt: skip

"""Sandbox: Yanwen tracking API.

``GET /api/tracking?nums=a,b,c`` with the API key as the bare ``Authorization`` header; a wrong key
is HTTP 200 ``{code: 1001, message, result: []}``. Each number gets a ``result`` entry: an unknown
one has ``tracking_status: "NOTFOUND"``. Checkpoints are oldest first, ``time_stamp`` is the place's
wall time and ``time_zone`` is "+8" on EVERY checkpoint, US ones included (Yanwen's quirk).

Scripts follow the shared convention: ``CarrierScript.tracking_number`` is the number the carrier
answers with, i.e. the last-mile number, and the Yanwen number is registered as an alias. Until a
last-mile checkpoint (code ``LM..``) is visible Yanwen answers with the number asked; from then on
with the last-mile number. ``Scan.code`` is the checkpoint code (``PU10``, ``LM40``...).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header
from fastapi.responses import Response

from services.simulator.carriers import CarrierScript, Scan, ScriptState, failure_response

CARRIER = "yanwen"
DEFAULT_CREDENTIALS = {"api_key": "demo-yanwen-key"}
STAMPED_ZONE = "+8"


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()

    @api.get("/api/tracking")
    async def tracking(
        nums: str = "", authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            body = orjson.dumps({"code": 500, "message": "server busy", "result": []})
            return failure_response(failure, body, "application/json")
        if authorization != state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)["api_key"]:
            return _json(
                {"code": 1001, "message": "Authorization failed: invalid api key", "result": []}
            )
        wanted = [n.strip() for n in nums.split(",") if n.strip()]
        if not wanted:
            return _json({"code": 1002, "message": "nums is required", "result": []})
        return _json(
            {"code": 0, "message": "success", "result": [_result(state, n) for n in wanted]}
        )

    return api


def _result(state: ScriptState, asked: str) -> dict[str, Any]:
    script = state.find(CARRIER, asked)
    visible = state.visible(script) if script is not None else []
    if script is None or not visible:
        return {"tracking_number": asked, "tracking_status": "NOTFOUND",
                "last_mile_tracking_expected": False, "checkpoints": []}  # fmt: skip
    last_mile = any(scan.code.startswith("LM") for scan, _ in visible)
    return {
        "tracking_number": script.tracking_number if last_mile else asked,
        "tracking_status": visible[-1][0].code,
        "last_mile_tracking_expected": script.tracking_number.upper() != asked.upper(),
        "checkpoints": [_checkpoint(scan, local) for scan, local in visible],
    }


def _checkpoint(scan: Scan, local: datetime) -> dict[str, Any]:
    return {
        "time_stamp": local.strftime("%Y-%m-%dT%H:%M:%S"),  # the place's wall time ...
        "time_zone": STAMPED_ZONE,  # ... labelled +8 wherever the place is
        "tracking_status": scan.code,
        "message": scan.text,
        "location": scan.city or "",
    }


def demo_script(last_mile: str, started_at: datetime) -> CarrierScript:
    """Shenzhen → Baltimore, handed to USPS under ``last_mile`` (register the Yanwen number as
    an alias: ``state.add("yanwen", script, yanwen_number)``)."""
    sz, ny = "Asia/Shanghai", "America/New_York"

    def at(hours: float, code: str, text: str, city: str, country: str, zone: str) -> Scan:
        return Scan(timedelta(hours=hours), code, text, city, country, zone)

    return CarrierScript(
        tracking_number=last_mile,
        started_at=started_at,
        scans=[
            at(0, "PU10", "Shipment picked up by Yanwen", "Shenzhen", "CN", sz),
            at(11, "SC10", "Arrived at Yanwen sorting center", "Guangzhou", "CN", sz),
            at(17, "SC20", "Departed from Yanwen sorting center", "Guangzhou", "CN", sz),
            at(30, "CC10", "Export customs clearance completed", "Guangzhou", "CN", sz),
            at(39, "LH10", "Departed from origin country", "Guangzhou", "CN", sz),
            at(60, "LH20", "Arrived at destination country", "New York, NY, US", "US", ny),
            at(85, "CC30", "Import customs clearance completed", "New York, NY, US", "US", ny),
            at(
                92,
                "LM10",
                "Handed over to USPS for last mile delivery",
                "Jamaica, NY, US",
                "US",
                ny,
            ),
            at(130, "LM20", "Out for delivery", "Baltimore, MD, US", "US", ny),
            at(136, "LM40", "Delivered, signed by: Walter Finch", "Baltimore, MD, US", "US", ny),
        ],
    )

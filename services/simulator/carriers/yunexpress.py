"""Sandbox: YunExpress OMS API, ``GET /api/Tracking/GetTrackInfo?OrderNumber=..``.

Auth is ``Authorization: Basic base64("<customerCode>&<apiSecret>")``. Every answer is HTTP 200 with
the ``{Code, Message, RequestId, TimeStamp, Item}`` envelope: "0000" success, "1002" bad
credentials, "1006" no data, and "10000" for the rate limit (an injected 429 failure is answered
that way, inside HTTP 200; 5xx failures are real HTTP errors). ``TimeStamp`` has .NET's 7-digit
fractions; ``ProcessDate`` is the place's wall time without an offset; details are oldest first.

Scripts follow the shared convention: ``CarrierScript.tracking_number`` is the last-mile number
(``TrackingNumber``) and the YunExpress waybill (``WaybillNumber``, ``YT...``) is registered as an
alias and asked for. ``Scan.code``, when not empty, is sent as ``TrackNodeCode``.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from services.simulator.carriers import CarrierScript, Scan, ScriptState, failure_response

CARRIER = "yunexpress"
DEFAULT_CREDENTIALS = {"customer_code": "C00001", "api_secret": "demo-yunexpress-secret"}
BEIJING = timezone(timedelta(hours=8))


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()

    def envelope(code: str, message: str, item: Any = None) -> Response:
        now = state.clock().astimezone(BEIJING)
        body = {
            "Code": code,
            "Message": message,
            "RequestId": uuid.uuid4().hex[:14].upper(),
            "TimeStamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}0+08:00",
            "Item": item,
        }
        return Response(orjson.dumps(body), media_type="application/json")

    @api.get("/api/Tracking/GetTrackInfo")
    async def track_info(
        order_number: Annotated[str, Query(alias="OrderNumber")] = "",
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None and failure.status == 429:
            return envelope("10000", "Request too frequent, please try again later")
        if failure is not None:
            return failure_response(failure, b"Service Unavailable", "text/plain")
        expected = state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)
        if authorization != _basic(expected["customer_code"], expected["api_secret"]):
            return envelope("1002", "Authentication failed")
        script = state.find(CARRIER, order_number) if order_number else None
        visible = state.visible(script) if script is not None else []
        if script is None or not visible:
            return envelope("1006", "No data found")
        return envelope("0000", "Success", _item(order_number, script, visible))

    return api


def _basic(customer_code: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{customer_code}&{secret}".encode()).decode("ascii")


def _item(
    asked: str, script: CarrierScript, visible: list[tuple[Scan, datetime]]
) -> dict[str, Any]:
    delivered = visible[-1][0].text.lower().startswith("delivered")
    return {
        "WaybillNumber": asked,
        "TrackingNumber": script.tracking_number,
        "CountryCode": script.scans[-1].country or "",
        "PackageState": 3 if delivered else 2,
        "TrackingStatus": 50 if delivered else 20,
        "OrderTrackingDetails": [_detail(scan, local) for scan, local in visible],
    }


def _detail(scan: Scan, local: datetime) -> dict[str, Any]:
    detail = {
        "ProcessDate": local.strftime("%Y-%m-%dT%H:%M:%S"),
        "ProcessContent": scan.text,
        "ProcessLocation": scan.city or "",
    }
    if scan.code:
        detail["TrackNodeCode"] = scan.code
    return detail


def demo_script(last_mile: str, started_at: datetime) -> CarrierScript:
    """Shenzhen → Manchester with an import hold, handed to Royal Mail under ``last_mile``
    (register the YT waybill as an alias: ``state.add("yunexpress", script, waybill)``)."""
    sz, uk = "Asia/Shanghai", "Europe/London"

    def at(hours: float, text: str, city: str, country: str, zone: str) -> Scan:
        return Scan(timedelta(hours=hours), "", text, city, country, zone)

    return CarrierScript(
        tracking_number=last_mile,
        started_at=started_at,
        scans=[
            at(0, "Order information received", "Shenzhen", "CN", sz),
            at(8, "Shipment received by YunExpress", "Shenzhen", "CN", sz),
            at(19, "Departed from YunExpress sorting center", "Shenzhen", "CN", sz),
            at(35, "Export customs clearance completed", "Shenzhen", "CN", sz),
            at(40, "Flight departed", "Shenzhen", "CN", sz),
            at(59, "Arrived at destination airport", "London Heathrow, GB", "GB", uk),
            at(78, "Held by customs: awaiting import documents", "London Heathrow, GB", "GB", uk),
            at(109, "Released by customs", "London Heathrow, GB", "GB", uk),
            at(
                124,
                "Shipment handed over to Royal Mail for final delivery",
                "Coventry, GB",
                "GB",
                uk,
            ),
            at(171, "Out for delivery", "Manchester, GB", "GB", uk),
            at(176, "Delivered, signed for by Harriet Vane", "Manchester, GB", "GB", uk),
        ],
    )

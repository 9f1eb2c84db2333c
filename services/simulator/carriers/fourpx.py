"""Sandbox: 4PX open platform, ``tr.order.tracking.get``.

``POST /router/api/service?method=tr.order.tracking.get&v=1.0&app_key=..&timestamp=..&format=json
&access_token=&sign=..`` with the body ``{"deliveryOrderNo": ".."}``. ``sign`` must be
``upper(md5("app_key" + key + "format" + "json" + "method" + method + "timestamp" + ts + "v" + "1.0"
+ body + secret))`` over the raw body; a wrong key or signature, an unknown method and an unknown
number are all HTTP 200 ``{result: "0", msg, errors: [{errorCode, errorMsg}]}``. Events are newest
first with ``occurDatetime`` as the place's wall time WITHOUT an offset, ``occurLocation`` free text,
``destinationCountry`` a country name; the arrival scan is repeated. ``Scan.code``, when not empty,
is sent as ``businessLinkCode``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.simulator.carriers import CarrierScript, Scan, ScriptState, failure_response

CARRIER = "4px"
PATH = "/router/api/service"
METHOD = "tr.order.tracking.get"
DEFAULT_CREDENTIALS = {"app_key": "demo-4px-app-key", "app_secret": "demo-4px-app-secret"}
COUNTRY_NAMES = {"US": "United States", "GB": "United Kingdom", "DE": "Germany", "FR": "France",
                 "ES": "Spain", "AU": "Australia", "CA": "Canada", "CN": "China"}  # fmt: skip


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _failed(code: str, message: str) -> Response:
    errors = [{"errorCode": code, "errorMsg": message}]
    return _json({"result": "0", "msg": "system processing failed", "errors": errors, "data": None})


def expected_sign(app_key: str, secret: str, method: str, timestamp: str, body: str) -> str:
    plain = f"app_key{app_key}formatjsonmethod{method}timestamp{timestamp}v1.0{body}{secret}"
    return hashlib.md5(plain.encode("utf-8")).hexdigest().upper()


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()

    @api.post(PATH)
    async def service(
        request: Request,
        method: str = "",
        app_key: str = "",
        timestamp: str = "",
        sign: Annotated[str, Query()] = "",
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            body = orjson.dumps({"result": "0", "msg": "service unavailable", "errors": []})
            return failure_response(failure, body, "application/json")
        raw = (await request.body()).decode("utf-8", "replace")
        expected = state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)
        if app_key != expected["app_key"]:
            return _failed("SYS0001", "app_key is invalid")
        if sign != expected_sign(app_key, expected["app_secret"], method, timestamp, raw):
            return _failed("SYS0003", "sign verification failed")
        if method != METHOD:
            return _failed("SYS0002", f"method {method} is not supported")
        number = _order_number(raw)
        script = state.find(CARRIER, number) if number else None
        visible = state.visible(script) if script is not None else []
        if script is None or not visible:
            return _failed("TR0001", "The order does not exist")
        return _json(
            {"result": "1", "msg": "success", "errors": [], "data": _data(script, visible)}
        )

    return api


def _order_number(raw: str) -> str:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ""
    value = doc.get("deliveryOrderNo") if isinstance(doc, dict) else None
    return value.strip() if isinstance(value, str) else ""


def _data(script: CarrierScript, visible: list[tuple[Scan, datetime]]) -> dict[str, Any]:
    entries = [_entry(scan, local) for scan, local in reversed(visible)]
    arrivals = [
        e for e in entries if e["trackingContent"].lower().startswith("arrived at destination")
    ]
    if arrivals:
        entries.insert(entries.index(arrivals[0]) + 1, dict(arrivals[0]))  # listed twice
    destination = script.scans[-1].country or ""
    return {
        "deliveryOrderNo": script.tracking_number,
        "destinationCountry": COUNTRY_NAMES.get(destination, destination),
        "trackingList": entries,
    }


def _entry(scan: Scan, local: datetime) -> dict[str, Any]:
    entry = {
        "occurDatetime": local.strftime("%Y-%m-%d %H:%M:%S"),
        "occurLocation": scan.city or "",
        "trackingContent": scan.text,
    }
    if scan.code:
        entry["businessLinkCode"] = scan.code
    return entry


def demo_script(number: str, started_at: datetime, last_mile: str) -> CarrierScript:
    """Shenzhen → Baltimore via Hong Kong, handed to USPS under ``last_mile`` in Los Angeles."""
    sz, hk, la, ny = "Asia/Shanghai", "Asia/Hong_Kong", "America/Los_Angeles", "America/New_York"

    def at(hours: float, code: str, text: str, city: str, country: str, zone: str) -> Scan:
        return Scan(timedelta(hours=hours), code, text, city, country, zone)

    return CarrierScript(
        tracking_number=number,
        started_at=started_at,
        scans=[
            at(0, "FPX_L_RPIF", "Parcel information received", "Shenzhen", "CN", sz),
            at(9, "FPX_C_AAF", "Arrived at 4PX Shenzhen sorting center", "Shenzhen", "CN", sz),
            at(17, "FPX_C_ADF", "Departed from 4PX sorting center", "Shenzhen", "CN", sz),
            at(35, "", "Export customs clearance completed", "Hong Kong", "HK", hk),
            at(40, "", "Flight departed from Hong Kong", "Hong Kong", "HK", hk),
            at(60, "", "Arrived at destination airport", "Los Angeles, CA, US", "US", la),
            at(87, "", "Import customs clearance completed", "Los Angeles, CA, US", "US", la),
            at(92, "", f"Handed over to last mile carrier USPS, tracking number: {last_mile}",
               "Los Angeles, CA, US", "US", la),
            at(130, "", "Out for delivery", "Baltimore, MD, US", "US", ny),
            at(137, "", "Delivered, signed by: Olivia Brenner", "Baltimore, MD, US", "US", ny),
        ],
    )  # fmt: skip

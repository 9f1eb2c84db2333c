"""Sandbox: UPU IPS Track and Trace REST API.

``GET /IPSAPIService/TrackAndTraceService.svc/rest/Mailitems?ids=a,b&lang=en&token=<GUID>``.
A missing or wrong token is HTTP 401 ``{"Errors": [..]}``. Each id gets one ``Results`` entry;
an unknown id is an empty entry inside HTTP 200. Scans in the item's origin country are the
post's own ``Events`` (``LocalDateTime`` without an offset, ``GmtDateTime`` in UTC without ``Z``,
reference data wrapped in one-element arrays); scans elsewhere are partner posts' EMSEVT records
in ``InfoFromEdi`` (EDI ``YYYYMMDDHHMM`` local time, offset without a colon). Oldest first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.simulator.carriers import (
    UPU_CODES,
    CarrierScript,
    Scan,
    ScriptState,
    failure_response,
    office_code,
)

CARRIER = "upu"
PATH = "/IPSAPIService/TrackAndTraceService.svc/rest/Mailitems"
DEFAULT_CREDENTIALS = {"token": "00000000-0000-4000-8000-0000000000a1"}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()

    @api.get(PATH)
    async def mail_items(
        ids: Annotated[str | None, Query()] = None,
        lang: Annotated[str, Query()] = "en",
        token: Annotated[str | None, Query()] = None,
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            body = orjson.dumps({"Errors": ["An exception occurred, try again later."]})
            return failure_response(failure, body, "application/json")
        if token != state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)["token"]:
            return _json({"Errors": ["Authorization failed: invalid token."]}, 401)
        wanted = [i.strip() for i in (ids or "").split(",") if i.strip()]
        if not wanted:
            return _json({"Errors": ["The ids parameter is required."]}, 400)
        return _json({"Results": [_result(state, item_id) for item_id in wanted]})

    return api


def _result(state: ScriptState, item_id: str) -> dict[str, Any]:
    script = state.find(CARRIER, item_id)
    visible = state.visible(script) if script is not None else []
    if script is None or not visible:
        return {"Fid": item_id, "InfoFromEdi": [], "OperationalMailitems": []}
    home = visible[0][0].country
    own = [_event(scan, local) for scan, local in visible if scan.country == home]
    relayed = [_edi(scan, local) for scan, local in visible if scan.country != home]
    destination = next((s.country for s, _ in reversed(visible) if s.country != home), None)
    item = {
        "InternationalId": script.tracking_number,
        "LocalId": f"{script.tracking_number}_LOCAL",
        "OrigCountry": [{"Code": home, "Name": None, "LocalName": None}],
        "DestCountry": [{"Code": destination, "Name": None, "LocalName": None}],
        "Weight": 0.4,
        "Events": own,
    }
    return {"Fid": item_id, "InfoFromEdi": relayed, "OperationalMailitems": [item]}


def _event(scan: Scan, local: datetime) -> dict[str, Any]:
    upu = scan.code if scan.code in UPU_CODES else None
    return {
        "LocalDateTime": local.replace(tzinfo=None).isoformat(timespec="seconds"),
        "GmtDateTime": local.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
        "EventOffice": [{"Code": office_code(scan), "Name": scan.city}],
        "EdiEvent": [{"Code": upu, "Name": scan.text}] if upu else [None],
        "IPSEventType": [{"Code": None, "Name": scan.text}],
        "NextOffice": [None],
        "NonDeliveryReason": [None],
        "Delivery": [None],
        "DeliveryAgent": [None],
    }


def _edi(scan: Scan, local: datetime) -> dict[str, Any]:
    offset = local.strftime("%z") or None
    return {
        "EventCd": scan.code,
        "EventLocalDt": local.strftime("%Y%m%d%H%M"),
        "EventUtcOffset": offset,
        "OfficeCd": office_code(scan),
    }


def demo_script(number: str, started_at: datetime) -> CarrierScript:
    """An ePacket Shenzhen → New York: China Post's own scans, then USPS's relayed by EDI."""
    sz, ny = "Asia/Shanghai", "America/New_York"

    def at(hours: float, code: str, text: str, city: str, country: str, zone: str) -> Scan:
        return Scan(timedelta(hours=hours), code, text, city, country, zone)

    return CarrierScript(
        tracking_number=number,
        started_at=started_at,
        scans=[
            at(0, "EMA", "Posting/collection", "SHENZHEN", "CN", sz),
            at(12, "EMB", "Arrival at outward office of exchange", "GUANGZHOU", "CN", sz),
            at(23, "EXA", "Item presented to export customs", "GUANGZHOU", "CN", sz),
            at(26, "EXC", "Item returned from export customs", "GUANGZHOU", "CN", sz),
            at(33.5, "EMC", "Departure from outward office of exchange", "GUANGZHOU", "CN", sz),
            at(92, "EMD", "Arrival at inward office of exchange", "JFK", "US", ny),
            at(94, "EDB", "Item presented to import customs", "JFK", "US", ny),
            at(109.5, "EDC", "Item returned from import customs", "JFK", "US", ny),
            at(115, "EMF", "Departure from inward office of exchange", "JFK", "US", ny),
            at(153, "EMG", "Arrival at delivery office", "NEW YORK", "US", ny),
            at(155, "EDG", "Item out for physical delivery", "NEW YORK", "US", ny),
            at(182, "EMI", "Final delivery", "NEW YORK", "US", ny),
        ],
    )  # fmt: skip

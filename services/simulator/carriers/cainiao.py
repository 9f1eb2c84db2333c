"""Sandbox: Cainiao global tracking JSON, ``GET /global/detail.json?mailNos=a,b&lang=en-US``.

No credentials (the public endpoint). ``{success: true, module: [...]}`` with one entry per number;
an unknown one has an empty ``detailList`` and ``mailNoSource: "EMPTY"``. ``detailList`` is newest
first: ``time`` is epoch milliseconds, ``timeStr`` the place's wall time and ``timeZone`` "GMT+8" /
"GMT+1" / ...; a scan without a zone gets a blank ``timeZone`` and no ``timeStr`` (Cainiao's quirk).
``originCountry``/``destCountry`` are country names; the handover scan is listed twice.
``Scan.code`` is the ``actionCode``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.simulator.carriers import CarrierScript, Scan, ScriptState, failure_response

CARRIER = "cainiao"
COUNTRY_NAMES = {"CN": "China", "ES": "Spain", "US": "United States", "GB": "United Kingdom",
                 "FR": "France", "DE": "Germany", "BR": "Brazil"}  # fmt: skip
STATUS_BY_CODE = {"GTMS_SIGNED": "SIGN", "GTMS_DO_DEPART": "DELIVERING", "LH_ARRIVE": "TRANSITING",
                  "CC_IM_START": "CLEAR_CUSTOMS", "GWMS_ACCEPT": "WAIT_ACCEPT"}  # fmt: skip


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()

    @api.get("/global/detail.json")
    async def detail(
        mail_nos: Annotated[str, Query(alias="mailNos")] = "",
        lang: Annotated[str, Query()] = "en-US",
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            body = orjson.dumps({"success": False, "errorCode": "SYSTEM_BUSY", "errorMsg": "busy"})
            return failure_response(failure, body, "application/json")
        wanted = [n.strip() for n in mail_nos.split(",") if n.strip()]
        if not wanted:
            return _json(
                {"success": False, "errorCode": "PARAM_ERROR", "errorMsg": "mailNos is empty"}
            )
        return _json({"success": True, "module": [_module(state, n) for n in wanted]})

    return api


def _module(state: ScriptState, number: str) -> dict[str, Any]:
    script = state.find(CARRIER, number)
    visible = state.visible(script) if script is not None else []
    if script is None or not visible:
        return {"mailNo": number, "status": "", "mailNoSource": "EMPTY", "detailList": []}
    details = [_detail(scan, local) for scan, local in reversed(visible)]
    handover = [d for d in details if d["actionCode"] == "GTMS_ACCEPT"]
    if handover:
        details.insert(details.index(handover[0]) + 1, dict(handover[0]))
    first, last = script.scans[0], script.scans[-1]
    latest = visible[-1][0].code
    return {
        "mailNo": script.tracking_number,
        "originCountry": COUNTRY_NAMES.get(first.country or "", first.country),
        "destCountry": COUNTRY_NAMES.get(last.country or "", last.country),
        "status": STATUS_BY_CODE.get(latest, "TRANSITING"),
        "latestTrace": details[0],
        "detailList": details,
    }


def _detail(scan: Scan, local: datetime) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "time": int(local.astimezone(UTC).timestamp() * 1000),
        "timeZone": "",
        "desc": scan.text,
        "standerdDesc": scan.text,
        "descTitle": scan.text.split(",")[0],
        "actionCode": scan.code,
    }
    if scan.zone:
        offset = local.utcoffset() or timedelta(0)
        hours, minutes = divmod(int(offset.total_seconds() // 60), 60)
        entry["timeZone"] = f"GMT{hours:+d}" + (f":{minutes:02d}" if minutes else "")
        entry["timeStr"] = local.strftime("%Y-%m-%d %H:%M:%S")
    return entry


def demo_script(number: str, started_at: datetime, last_mile: str) -> CarrierScript:
    """Shenzhen → Madrid with an import hold, handed to Correos under ``last_mile``, signed by a
    pickup station and then collected."""
    sz, md = "Asia/Shanghai", "Europe/Madrid"

    def at(hours: float, code: str, text: str, country: str, zone: str | None) -> Scan:
        return Scan(timedelta(hours=hours), code, text, None, country, zone)

    return CarrierScript(
        tracking_number=number,
        started_at=started_at,
        scans=[
            at(0, "GWMS_ACCEPT", "Warehouse accepted the order", "CN", sz),
            at(10, "GWMS_OUTBOUND", "Package left the warehouse", "CN", sz),
            at(23.5, "SC_INBOUND_SUCCESS", "Arrived at sorting center", "CN", sz),
            at(28, "SC_OUTBOUND_SUCCESS", "Departed from sorting center", "CN", sz),
            at(44, "CC_EX_START", "Export customs clearance started", "CN", sz),
            at(47, "CC_EX_SUCCESS", "Export customs clearance complete", "CN", sz),
            at(61.8, "LH_HO_AIRLINE", "Handed over to airline", "CN", sz),
            at(65, "LH_DEPART", "Flight departed", "CN", sz),
            at(79.3, "LH_ARRIVE", "Arrived at destination country", "ES", None),
            at(84, "CC_IM_START", "Import customs clearance started", "ES", md),
            at(102, "CC_IM_FAILURE", "Import customs clearance on hold: documents required", "ES", md),
            at(128, "CC_IM_SUCCESS", "Import customs clearance complete", "ES", md),
            at(135, "GTMS_ACCEPT", f"Handed over to last mile carrier Correos, tracking number {last_mile}",
               "ES", md),
            at(149.5, "GTMS_DO_DEPART", "Out for delivery", "ES", md),
            at(154.2, "GTMS_STA_SIGNED", "Package signed for by the pickup station", "ES", md),
            at(177.8, "GTMS_SIGNED", "Delivered, signed by: Lucia Ferrandez", "ES", md),
        ],
    )  # fmt: skip

"""Sandbox: China Post / EMS ePacket partner API.

``GET /partner/api/public/p/track/query/{en|cn}/{number}`` with ``version:
international_eub_us_1.1`` and ``authenticate: <token>`` (a wrong token is HTTP 401 with a JSON
error). The answer is ``<traces><trace><acceptTime/><acceptAddress/><remark/></trace>…`` oldest
first, ``acceptTime`` the office's local time without an offset (Beijing time in China),
``acceptAddress`` pinyin plus an office code in China and the IMPC abroad, English remarks (``en``)
or Chinese ones (``cn``). UPU-coded steps also carry ``<code>`` (the UPU-style variant of the feed).
An unknown number is the literal body ``null`` with HTTP 200.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import Annotated
from xml.sax.saxutils import escape

from fastapi import APIRouter, Header
from fastapi.responses import Response

from services.simulator.carriers import (
    UPU_CODES,
    CarrierScript,
    Scan,
    ScriptState,
    failure_response,
    office_code,
)

CARRIER = "china-post"
PATH = "/partner/api/public/p/track/query"
API_VERSION = "international_eub_us_1.1"
DEFAULT_CREDENTIALS = {"token": "demo-china-post-token"}
# Chinese remarks for UPU-coded steps (lang=cn).
CHINESE: dict[str, str] = {
    "EMA": "已收寄", "EMB": "到达互换局", "EXA": "出口海关申报", "EXC": "出口海关放行",
    "EMC": "已交航空公司运输", "EMD": "到达寄达地", "EDB": "进口海关查验", "EDC": "进口海关放行",
    "EMG": "到达投递局", "EDG": "正在投递", "EMH": "未妥投", "EMI": "妥投",
}  # fmt: skip
XML = "application/xml;charset=UTF-8"


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()

    @api.get(PATH + "/{lang}/{number}")
    async def query(
        lang: str,
        number: str,
        version: Annotated[str | None, Header()] = None,
        authenticate: Annotated[str | None, Header()] = None,
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            return failure_response(
                failure, b'{"code":"500","msg":"system busy"}', "application/json"
            )
        token = state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)["token"]
        if authenticate != token or version != API_VERSION:
            body = b'{"code":"401","msg":"authenticate failed"}'
            return Response(body, status_code=401, media_type="application/json")
        script = state.find(CARRIER, number)
        visible = state.visible(script) if script is not None else []
        if not visible:
            return Response(b"null", media_type="application/json")
        traces = "".join(_trace(scan, local, lang) for scan, local in visible)
        document = f'<?xml version="1.0" encoding="UTF-8"?><traces>{traces}</traces>'
        return Response(document.encode(), media_type=XML)

    return api


def _trace(scan: Scan, local: datetime, lang: str) -> str:
    remark = CHINESE.get(scan.code, scan.text) if lang == "cn" else scan.text
    code = f"<code>{scan.code}</code>" if scan.code in UPU_CODES else ""
    return (
        f"<trace><acceptTime>{local.strftime('%Y-%m-%d %H:%M:%S')}</acceptTime>"
        f"<acceptAddress>{escape(_address(scan))}</acceptAddress>"
        f"<remark>{escape(remark)}</remark>{code}</trace>"
    )


def _address(scan: Scan) -> str:
    if scan.country and scan.country != "CN":
        return office_code(scan) or scan.country
    city = (scan.city or "").title().replace(" ", "")
    return f"{city}Shi {zlib.crc32(city.encode()) % 10**8:08d}"  # stable across restarts


def demo_script(number: str, started_at: datetime) -> CarrierScript:
    """An ePacket Suzhou → New York as China Post shows it (UPU-coded steps, IMPC abroad)."""
    sz, ny = "Asia/Shanghai", "America/New_York"

    def at(hours: float, code: str, text: str, city: str, country: str, zone: str) -> Scan:
        return Scan(timedelta(hours=hours), code, text, city, country, zone)

    return CarrierScript(
        tracking_number=number,
        started_at=started_at,
        scans=[
            at(0, "EMA", "Posting", "SUZHOU", "CN", sz),
            at(7.5, "ARR", "Arrival at Sorting Center", "SUZHOU", "CN", sz),
            at(13, "DEP", "Despatch from Sorting Center", "SUZHOU", "CN", sz),
            at(25, "EXA", "Handed over to export customs", "SHANGHAI", "CN", sz),
            at(38.5, "EMC", "Departure from outward office of exchange", "SHANGHAI", "CN", sz),
            at(104, "EMD", "Arrival at inward office of exchange", "JFK", "US", ny),
            at(180, "EMI", "Delivered", "JFK", "US", ny),
        ],
    )  # fmt: skip

"""Sandbox: SF Express open platform, route query ``EXP_RECE_SEARCH_ROUTES``.

``POST /std/service`` with the form fields ``partnerID``, ``requestID``, ``serviceCode``,
``timestamp``, ``msgData`` and ``msgDigest`` = base64(md5(quote_plus(msgData + timestamp +
checkword))). Every answer is HTTP 200 with the platform envelope ``{apiResultCode, apiErrorMsg,
apiResponseID, apiResultData}`` where ``apiResultData`` is the service's answer as a JSON STRING:
"A1006" bad digest, "A1004" unknown partner or service, "A1005" traffic control (an injected 429
failure is answered that way; 5xx failures are real HTTP errors). Inside, ``{success, errorCode:
"S0000", msgData: {routeResps: [{mailNo, routes}]}}``; an unknown number has an empty ``routes``.
Routes are oldest first with ``acceptTime`` the place's wall time (Beijing time on the mainland),
no offset; the arrival scan is listed twice. ``Scan.code`` is the ``opCode``; remarks name the
courier and the signatory, with phone numbers, as SF's do.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote_plus

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.simulator.carriers import CarrierScript, Scan, ScriptState, failure_response

CARRIER = "sf-express"
SERVICE_CODE = "EXP_RECE_SEARCH_ROUTES"
DEFAULT_CREDENTIALS = {"partner_id": "DEMO_SF_PARTNER", "checkword": "demo-sf-checkword"}


def expected_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    plain = quote_plus(msg_data + timestamp + checkword)
    return base64.b64encode(hashlib.md5(plain.encode("utf-8")).digest()).decode("ascii")


def _envelope(code: str, message: str, result: dict[str, Any] | None = None) -> Response:
    body = {
        "apiErrorMsg": message,
        "apiResponseID": uuid.uuid4().hex.upper(),
        "apiResultCode": code,
        "apiResultData": None if result is None else orjson.dumps(result).decode("utf-8"),
    }
    return Response(orjson.dumps(body), media_type="application/json")


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()

    @api.post("/std/service")
    async def service(request: Request) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None and failure.status == 429:
            return _envelope("A1005", "流量受控")
        if failure is not None:
            return failure_response(failure, b"Internal Server Error", "text/plain")
        form = await _form(request)
        expected = state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)
        if (
            form.get("partnerID") != expected["partner_id"]
            or form.get("serviceCode") != SERVICE_CODE
        ):
            return _envelope("A1004", "无对应服务权限")
        msg_data, timestamp = form.get("msgData", ""), form.get("timestamp", "")
        if form.get("msgDigest") != expected_digest(msg_data, timestamp, expected["checkword"]):
            return _envelope("A1006", "数字签名无效")
        numbers = _numbers(msg_data)
        if not numbers:
            return _envelope("A1000", "", {"success": False, "errorCode": "8013",
                                           "errorMsg": "未传入查询单号", "msgData": None})  # fmt: skip
        resps = [_route_resp(state, n) for n in numbers]
        inner = {
            "success": True,
            "errorCode": "S0000",
            "errorMsg": None,
            "msgData": {"routeResps": resps},
        }
        return _envelope("A1000", "", inner)

    return api


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (last value wins, like the carriers')."""
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def _numbers(msg_data: str) -> list[str]:
    try:
        doc = orjson.loads(msg_data)
    except orjson.JSONDecodeError:
        return []
    numbers = doc.get("trackingNumber") if isinstance(doc, dict) else None
    return (
        [n for n in numbers if isinstance(n, str) and n.strip()]
        if isinstance(numbers, list)
        else []
    )


def _route_resp(state: ScriptState, number: str) -> dict[str, Any]:
    script = state.find(CARRIER, number)
    visible = state.visible(script) if script is not None else []
    routes = [_route(scan, local) for scan, local in visible]
    arrivals = [r for r in routes if r["opCode"] == "31"]
    if arrivals:
        routes.insert(routes.index(arrivals[0]) + 1, dict(arrivals[0]))
    return {"mailNo": script.tracking_number if script else number, "routes": routes}


def _route(scan: Scan, local: datetime) -> dict[str, Any]:
    return {
        "acceptTime": local.strftime("%Y-%m-%d %H:%M:%S"),
        "acceptAddress": scan.city or "",
        "remark": scan.text,
        "opCode": scan.code,
    }


def demo_script(number: str, started_at: datetime) -> CarrierScript:
    """Shenzhen → Beijing: a failed attempt, a parcel locker, then signed for."""
    bj = "Asia/Shanghai"

    def at(hours: float, code: str, text: str, city: str) -> Scan:
        return Scan(timedelta(hours=hours), code, text, city, "CN", bj)

    return CarrierScript(
        tracking_number=number,
        started_at=started_at,
        scans=[
            at(0, "54", "顺丰速运 已收取快件", "深圳市"),
            at(
                3.5,
                "30",
                "快件在【深圳宝安集散中心】完成分拣,准备发往 【北京顺义集散中心】",
                "深圳市",
            ),
            at(14.7, "31", "快件到达 【北京顺义集散中心】", "北京市"),
            at(17.5, "50", "快件交给李四，正在派送途中（联系电话：13912345678）", "北京市"),
            at(21, "70", "因收方客户不在，快件派送不成功，我们将再次派送", "北京市"),
            at(21.6, "130", "快件已放在丰巢快递柜，请凭取件码取件", "北京市"),
            at(26.8, "80", "已签收,感谢使用顺丰,期待再次为您服务 签收人是：王小明", "北京市"),
        ],
    )

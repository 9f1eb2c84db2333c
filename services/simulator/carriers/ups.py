"""Sandbox: UPS Track API with UPS's OAuth client-credentials token endpoint.

``POST /security/v1/oauth/token`` needs HTTP Basic ``client_id:client_secret`` and the form
``grant_type=client_credentials``; it answers ``{token_type: "Bearer", access_token, expires_in:
"14399" (a string), status: "approved", ...}``; wrong credentials are 401 with UPS's
``{"response": {"errors": [..]}}``. ``GET /api/track/v1/details/{inquiryNumber}`` needs the bearer
token and the ``transId`` and ``transactionSrc`` headers. Activities come UNORDERED (as in UPS's CIE
data), the out-for-delivery scan is listed twice, ``date``/``time`` are the place's wall time, and
``gmtDate``/``gmtTime``/``gmtOffset`` are sent for most scans with ``gmtTime`` losing its leading
zero ("74700"). An unknown number is HTTP 200 with shipment ``warnings`` TW0001. Addresses, the
recipient's name and ``receivedBy`` are in the answer, as UPS sends them.

``Scan.code`` is the UPS activity code (``status.code``); ``ACTIVITIES`` gives its ``status.type``
and 3-digit ``statusCode``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from services.simulator.carriers import CarrierScript, Scan, ScriptState, failure_response

CARRIER = "ups"
TOKEN_PATH = "/security/v1/oauth/token"
TRACK_PATH = "/api/track/v1/details"
DEFAULT_CREDENTIALS = {"client_id": "demo-ups-client", "client_secret": "demo-ups-secret"}
TOKEN_SECONDS = 14399
# activity code → (status.type, statusCode)
ACTIVITIES: dict[str, tuple[str, str]] = {
    "MP": ("M", "003"),
    "OR": ("I", "038"),
    "XD": ("I", "038"),
    "DP": ("I", "005"),
    "AR": ("I", "005"),
    "YP": ("I", "005"),
    "SR": ("I", "005"),
    "HC": ("X", "012"),
    "OT": ("I", "021"),
    "48": ("X", "022"),
    "ZP": ("I", "040"),
    "FS": ("D", "011"),
    "RS": ("X", "034"),
}
RECIPIENT = "MARGARET HOLLOWAY"
NOT_FOUND = {"code": "TW0001", "message": "Tracking Information Not Found"}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _errors(status: int, code: str, message: str) -> Response:
    return _json({"response": {"errors": [{"code": code, "message": message}]}}, status)


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()
    tokens: set[str] = set()

    @api.post(TOKEN_PATH)
    async def token(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            return failure_response(failure, _error_body("Service Unavailable"), "application/json")
        expected = state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)
        if authorization != _basic(expected["client_id"], expected["client_secret"]):
            return _errors(401, "10401", "ClientId is Invalid")
        form = await _form(request)
        if form.get("grant_type") != "client_credentials":
            return _errors(400, "10400", "Invalid/Missing grant_type")
        issued = secrets.token_urlsafe(32)
        tokens.add(issued)
        now_ms = str(int(state.clock().timestamp() * 1000))
        return _json(
            {
                "token_type": "Bearer",
                "issued_at": now_ms,
                "client_id": expected["client_id"],
                "access_token": issued,
                "expires_in": str(TOKEN_SECONDS),
                "refresh_count": "0",
                "status": "approved",
            }
        )

    @api.get(TRACK_PATH + "/{inquiry_number}")
    async def details(
        inquiry_number: str,
        authorization: Annotated[str | None, Header()] = None,
        trans_id: Annotated[str | None, Header(alias="transId")] = None,
        transaction_src: Annotated[str | None, Header(alias="transactionSrc")] = None,
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            return failure_response(failure, _error_body("Service Unavailable"), "application/json")
        if (authorization or "").removeprefix("Bearer ").strip() not in tokens:
            return _errors(401, "250002", "Invalid Authentication Information.")
        if not trans_id or not transaction_src:
            return _errors(400, "250000", "Missing transId or transactionSrc header")
        if not 7 <= len(inquiry_number) <= 34:
            return _errors(400, "TV1002", "Invalid inquiry number")
        script = state.find(CARRIER, inquiry_number)
        visible = state.visible(script) if script is not None else []
        if script is None or not visible:
            shipment: dict[str, Any] = {"inquiryNumber": inquiry_number, "warnings": [NOT_FOUND]}
        else:
            shipment = {"inquiryNumber": inquiry_number, "package": [_package(script, visible)]}
        return _json({"trackResponse": {"shipment": [shipment]}})

    return api


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (last value wins, like the carriers')."""
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def _error_body(message: str) -> bytes:
    return orjson.dumps({"response": {"errors": [{"code": "190001", "message": message}]}})


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _package(script: CarrierScript, visible: list[tuple[Scan, datetime]]) -> dict[str, Any]:
    number = script.tracking_number
    activities = [_activity(scan, local, i) for i, (scan, local) in enumerate(visible)]
    latest_scan = visible[-1][0]
    repeated = [a for a in activities if a["status"]["code"] == "OT"]
    activities += repeated[:1]  # UPS lists the out-for-delivery scan twice
    package: dict[str, Any] = {
        "trackingNumber": number,
        "activity": sorted(activities, key=lambda a: _shuffle_key(number, a)),
        "currentStatus": {
            "description": latest_scan.text,
            "code": _type_and_status(latest_scan)[1],
        },
        "packageAddress": _addresses(visible),
        "service": {"code": "007", "levelCode": "007", "description": "UPS Worldwide Express"},
        "weight": {"unitOfMeasurement": "KGS", "weight": "1.40"},
        "packageCount": 1,
    }
    if latest_scan.code == "FS":
        package["deliveryInformation"] = {
            "location": "UPS Access Point",
            "receivedBy": RECIPIENT,
            "signature": {"image": "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"},
        }
    return package


def _shuffle_key(number: str, activity: dict[str, Any]) -> str:
    """A stable pseudo-random order: the same scans come back in the same jumbled order."""
    seed = f"{number}|{activity['date']}|{activity['time']}|{activity['status']['code']}"
    return hashlib.sha256(seed.encode()).hexdigest()


def _type_and_status(scan: Scan) -> tuple[str, str]:
    return ACTIVITIES.get(scan.code, ("I", "005"))


def _activity(scan: Scan, local: datetime, index: int) -> dict[str, Any]:
    kind, status_code = _type_and_status(scan)
    city, _, region = (scan.city or "").partition(",")
    address = {"city": city.strip(), "stateProvince": region.strip(), "postalCode": "",
               "country": scan.country or "", "countryCode": scan.country or ""}  # fmt: skip
    activity: dict[str, Any] = {
        "location": {"address": address, "slic": "8199"},
        "status": {
            "type": kind,
            "description": scan.text,
            "code": scan.code,
            "statusCode": status_code,
        },  # fmt: skip
        "date": local.strftime("%Y%m%d"),
        "time": local.strftime("%H%M%S"),
    }
    if index % 4 != 3 and local.utcoffset() is not None:  # UPS leaves gmt* out now and then
        gmt = local.astimezone(UTC)
        offset = local.utcoffset() or timedelta(0)
        activity["gmtDate"] = gmt.strftime("%Y%m%d")
        activity["gmtTime"] = gmt.strftime("%H%M%S").lstrip("0") or "0"
        activity["gmtOffset"] = _offset(offset)
    return activity


def _offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _addresses(visible: list[tuple[Scan, datetime]]) -> list[dict[str, Any]]:
    first, last = visible[0][0], visible[-1][0]
    return [
        {"type": "ORIGIN", "name": "RHEINLAND GADGETS GMBH",
         "address": {"addressLine1": "INDUSTRIESTRASSE 12", "city": (first.city or "").split(",")[0],
                     "countryCode": first.country or "", "country": first.country or ""}},
        {"type": "DESTINATION", "name": RECIPIENT, "attentionName": RECIPIENT,
         "address": {"addressLine1": "742 EVERGREEN TERRACE", "city": (last.city or "").split(",")[0],
                     "countryCode": last.country or "", "country": last.country or ""}},
    ]  # fmt: skip


def demo_script(number: str, started_at: datetime) -> CarrierScript:
    """Neuss → Atlanta: customs hold and release, a failed attempt, an Access Point, delivery."""
    berlin, louisville, atlanta = "Europe/Berlin", "America/Kentucky/Louisville", "America/New_York"

    def at(hours: float, code: str, text: str, city: str, country: str, zone: str) -> Scan:
        return Scan(timedelta(hours=hours), code, text, city, country, zone)

    return CarrierScript(
        tracking_number=number,
        started_at=started_at,
        scans=[
            at(0, "MP", "Shipper created a label, UPS has not received the package yet.", "NEUSS", "DE", berlin),
            at(8, "OR", "Pickup Scan", "NEUSS", "DE", berlin),
            at(12, "DP", "Departed from Facility", "KOELN", "DE", berlin),
            at(23, "AR", "Arrived at Facility", "LOUISVILLE, KY", "US", louisville),
            at(27, "HC", "Your package is being held by customs: the importer's documents are required.",
               "LOUISVILLE, KY", "US", louisville),
            at(49, "SR", "Your package was released by the customs agency.", "LOUISVILLE, KY", "US", louisville),
            at(61, "DP", "Departed from Facility", "LOUISVILLE, KY", "US", louisville),
            at(67, "AR", "Arrived at Facility", "ATLANTA, GA", "US", atlanta),
            at(71, "OT", "Out For Delivery Today", "ATLANTA, GA", "US", atlanta),
            at(77, "48", "The receiver was not available for delivery. A notice was left for Margaret Holloway.",
               "ATLANTA, GA", "US", atlanta),
            at(80, "ZP", "Delivered to UPS Access Point\u2122 and awaiting customer pickup",
               "ATLANTA, GA", "US", atlanta),
            at(98, "FS", "DELIVERED", "ATLANTA, GA", "US", atlanta),
        ],
    )  # fmt: skip

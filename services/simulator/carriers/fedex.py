"""Sandbox: FedEx Track API with FedEx's OAuth client-credentials token endpoint.

``POST /oauth/token`` (form ``grant_type=client_credentials&client_id=..&client_secret=..``) →
``{access_token, token_type: "bearer", expires_in: 3599, scope: "CXS"}``; wrong credentials are 401
``{transactionId, errors: [{code: "NOT.AUTHORIZED.ERROR", message}]}``. ``POST
/track/v1/trackingnumbers`` needs the bearer token and takes 1 to 30 numbers (else 400 with an
``errors`` list). Each number gets a ``completeTrackResults`` entry: an unknown one carries a
per-number ``error`` TRACKING.TRACKINGNUMBER.NOTFOUND inside HTTP 200; a ``FedexScript`` with
``previous`` shipments (a reused number) gets one ``trackResults`` entry per shipment, told apart by
``trackingNumberUniqueId``. Scans are newest first with the place's offset, except "OC" which
carries FedEx's system offset (-05:00) wherever the label was made; the pickup date in
``dateAndTimes`` has no offset. Names and street lines are in the answer, as FedEx sends them.

``Scan.code`` is the FedEx ``eventType``, optionally ``"<eventType>/<exceptionCode>"``.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from services.simulator.carriers import CarrierScript, Scan, ScriptState, failure_response

CARRIER = "fedex"
DEFAULT_CREDENTIALS = {"client_id": "demo-fedex-client", "client_secret": "demo-fedex-secret"}
BATCH_LIMIT = 30
SYSTEM_OFFSET = timezone(timedelta(hours=-5))
# eventType → (derivedStatusCode, derivedStatus)
DERIVED: dict[str, tuple[str, str]] = {
    "OC": ("IN", "Label created"),
    "PU": ("PU", "Picked up"),
    "DL": ("DL", "Delivered"),
    "DE": ("DE", "Delivery exception"),
    "CD": ("DY", "Delay"),
    "HL": ("HL", "Ready for pickup"),
}
EXCEPTIONS = {"08": "Customer not available or business closed", "A25": "Available for clearance"}
RECIPIENT = "Daniel Okafor"


@dataclass
class FedexScript(CarrierScript):
    """A script whose number FedEx once used for other shipments (answered after this one)."""

    previous: list[CarrierScript] = field(default_factory=list)


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _errors(status: int, code: str, message: str) -> Response:
    errors = [{"code": code, "message": message}]
    return _json({"transactionId": str(uuid.uuid4()), "errors": errors}, status)


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()
    tokens: set[str] = set()

    @api.post("/oauth/token")
    async def token(request: Request) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            return failure_response(failure, _unavailable(), "application/json")
        form = await _form(request)
        expected = state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)
        if form.get("grant_type") != "client_credentials" or any(
            form.get(k) != v for k, v in expected.items()
        ):
            return _errors(401, "NOT.AUTHORIZED.ERROR", "The given client credentials were not "
                           "valid. Please modify your request and try again.")  # fmt: skip
        issued = secrets.token_urlsafe(32)
        tokens.add(issued)
        return _json(
            {"access_token": issued, "token_type": "bearer", "expires_in": 3599, "scope": "CXS"}
        )

    @api.post("/track/v1/trackingnumbers")
    async def track(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            return failure_response(failure, _unavailable(), "application/json")
        if (authorization or "").removeprefix("Bearer ").strip() not in tokens:
            return _errors(401, "NOT.AUTHORIZED.ERROR", "Access token expired. Please modify "
                           "your request and try again.")  # fmt: skip
        numbers = _numbers(await request.body())
        if not numbers:
            return _errors(400, "TRACKING.TRACKINGNUMBER.EMPTY", "Please provide tracking number.")
        if len(numbers) > BATCH_LIMIT:
            return _errors(400, "TRACKING.TRACKINGNUMBER.LIMIT",
                           f"Please provide at most {BATCH_LIMIT} tracking numbers.")  # fmt: skip
        results = [_complete(state, n) for n in numbers]
        return _json(
            {"transactionId": str(uuid.uuid4()), "output": {"completeTrackResults": results}}
        )

    return api


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (last value wins, like the carriers')."""
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def _unavailable() -> bytes:
    errors = [
        {"code": "SERVICE.UNAVAILABLE.ERROR", "message": "The service is currently unavailable"}
    ]
    return orjson.dumps({"transactionId": str(uuid.uuid4()), "errors": errors})


def _numbers(body: bytes) -> list[str]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    infos = doc.get("trackingInfo") if isinstance(doc, dict) else None
    numbers = []
    for info in infos if isinstance(infos, list) else []:
        inner = info.get("trackingNumberInfo") if isinstance(info, dict) else None
        number = inner.get("trackingNumber") if isinstance(inner, dict) else None
        if isinstance(number, str) and number.strip():
            numbers.append(number.strip())
    return numbers


def _complete(state: ScriptState, number: str) -> dict[str, Any]:
    script = state.find(CARRIER, number)
    shipments = [script] if script is not None else []
    if isinstance(script, FedexScript):
        shipments += script.previous
    results = [
        _track_result(s, visible, i)
        for i, s in enumerate(shipments)
        if (visible := state.visible(s))
    ]
    return {"trackingNumber": number, "trackResults": results or [_not_found(number)]}


def _not_found(number: str) -> dict[str, Any]:
    return {
        "trackingNumberInfo": {"trackingNumber": number, "trackingNumberUniqueId": "", "carrierCode": ""},
        "error": {"code": "TRACKING.TRACKINGNUMBER.NOTFOUND",
                  "message": "Tracking number cannot be found. Please correct the tracking number and try again."},
    }  # fmt: skip


def _track_result(
    script: CarrierScript, visible: list[tuple[Scan, datetime]], generation: int
) -> dict[str, Any]:
    number = script.tracking_number
    unique_id = f"{12025 - generation * 7}~{number}~FX"
    events = [_scan(scan, local) for scan, local in reversed(visible)]
    first, last = visible[0], visible[-1]
    result: dict[str, Any] = {
        "trackingNumberInfo": {"trackingNumber": number, "trackingNumberUniqueId": unique_id,
                               "carrierCode": "FDXE"},
        "shipperInformation": {"contact": {"personName": "Wei Zhang", "companyName": "Shenzhen Brightware Co"},
                               "address": {"city": _city(first[0]), "countryCode": first[0].country or ""}},
        "recipientInformation": {"contact": {"personName": RECIPIENT},
                                 "address": {"streetLines": ["1 Example Way"], "city": _city(last[0]),
                                             "countryCode": last[0].country or "", "residential": True}},
        "latestStatusDetail": {"code": _event_type(last[0]), "description": last[0].text,
                               "statusByLocale": last[0].text},
        "dateAndTimes": [{"type": "ACTUAL_PICKUP", "dateTime": first[1].strftime("%Y-%m-%dT00:00:00")}],
        "serviceDetail": {"type": "INTERNATIONAL_PRIORITY", "description": "FedEx International Priority"},
        "scanEvents": events,
    }  # fmt: skip
    if _event_type(last[0]) == "DL":
        result["deliveryDetails"] = {"receivedByName": "D.OKAFOR", "signedByName": RECIPIENT}
    return result


def _event_type(scan: Scan) -> str:
    return scan.code.partition("/")[0]


def _city(scan: Scan) -> str:
    return (scan.city or "").partition(",")[0].strip()


def _scan(scan: Scan, local: datetime) -> dict[str, Any]:
    event_type, _, exception = scan.code.partition("/")
    stamped = local.astimezone(SYSTEM_OFFSET) if event_type == "OC" else local
    city, _, region = (scan.city or "").partition(",")
    derived = DERIVED.get(event_type, ("IT", "In transit"))
    return {
        "date": stamped.isoformat(timespec="seconds"),
        "eventType": event_type,
        "eventDescription": scan.text,
        "exceptionCode": exception,
        "exceptionDescription": EXCEPTIONS.get(exception, ""),
        "scanLocation": {"streetLines": [""], "city": city.strip(), "stateOrProvinceCode": region.strip(),
                         "countryCode": scan.country or "", "residential": False},
        "locationType": "FEDEX_FACILITY",
        "derivedStatusCode": derived[0],
        "derivedStatus": derived[1],
    }  # fmt: skip


def demo_script(number: str, started_at: datetime) -> FedexScript:
    """Shenzhen → Irvine with an import hold, a failed attempt and a pickup at a FedEx location;
    the number was used once before, for a domestic shipment two years earlier."""
    sz, la, memphis = "Asia/Shanghai", "America/Los_Angeles", "America/Chicago"

    def at(hours: float, code: str, text: str, city: str, country: str, zone: str) -> Scan:
        return Scan(timedelta(hours=hours), code, text, city, country, zone)

    previous = CarrierScript(
        tracking_number=number,
        started_at=started_at - timedelta(days=700),
        scans=[
            at(0, "OC", "Shipment information sent to FedEx", "SAN JOSE, CA", "US", la),
            at(20, "PU", "Picked up", "SAN JOSE, CA", "US", la),
            at(90, "DL", "Delivered", "SAN DIEGO, CA", "US", la),
        ],
    )
    return FedexScript(
        tracking_number=number,
        started_at=started_at,
        previous=[previous],
        scans=[
            at(0, "OC", "Shipment information sent to FedEx", "SHENZHEN", "CN", sz),
            at(10, "PU", "Picked up", "SHENZHEN", "CN", sz),
            at(14, "AR", "Arrived at FedEx location", "GUANGZHOU", "CN", sz),
            at(20, "CC", "International shipment release - Export", "GUANGZHOU", "CN", sz),
            at(23, "DP", "Departed FedEx hub", "GUANGZHOU", "CN", sz),
            at(40, "AR", "Arrived at FedEx hub", "MEMPHIS, TN", "US", memphis),
            at(41, "CD", "Clearance delay - Import", "MEMPHIS, TN", "US", memphis),
            at(68, "CC", "International shipment release - Import", "MEMPHIS, TN", "US", memphis),
            at(76, "DP", "Departed FedEx hub", "MEMPHIS, TN", "US", memphis),
            at(86, "AR", "At local FedEx facility", "IRVINE, CA", "US", la),
            at(88, "OD", "On FedEx vehicle for delivery", "IRVINE, CA", "US", la),
            at(93, "DE/08", "Delivery exception", "IRVINE, CA", "US", la),
            at(97, "HL", "Ready for recipient pickup", "IRVINE, CA", "US", la),
            at(115, "DL", "Delivered", "IRVINE, CA", "US", la),
        ],
    )

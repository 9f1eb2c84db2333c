"""Sandbox: Royal Mail Tracking API v2.

``GET /mailpieces/v2/{mailPieceId}/events`` with ``X-IBM-Client-Id``, ``X-IBM-Client-Secret`` and
``X-Accept-RMG-Terms: yes``; wrong or missing credentials are 401 and missing terms 400, in Royal
Mail's ``{httpCode, httpMessage, moreInformation}`` shape; an unknown barcode is 404 with
``errors[{errorCode: "E1142", ...}]``. Events are newest first with ``eventDateTime`` in ISO
with the UK offset (``+01:00`` in summer); ``summary.oneDBarcode`` is the number, and
``internationalPostalProvider`` names the post abroad for items leaving the UK.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header
from fastapi.responses import Response

from services.simulator.carriers import CarrierScript, Scan, ScriptState, failure_response

CARRIER = "royal-mail"
DEFAULT_CREDENTIALS = {
    "client_id": "demo-royal-mail-client",
    "client_secret": "demo-royal-mail-secret",
}
FROM_UPU: dict[str, tuple[str, str]] = {
    "EMA": ("EVOCO", "We've received your item and it's now being processed"),
    "EMB": ("EVORI", "Arrived at Heathrow Worldwide DC"),
    "EMC": ("", "Departure from outward office of exchange"),
    "EMD": ("EVIMC", "Item received in the UK"),
    "EDB": ("", "Item being checked by customs"),
    "EDC": ("", "Item released from customs"),
    "EMF": ("EVODO", "Item despatched to delivery office"),
    "EMG": ("EVDAV", "Item received at delivery office"),
    "EDG": ("EVGPD", "Due to be delivered today"),
    "EMH": ("EVKNA", "Delivery attempted - no answer"),
    "EDH": ("EVNDA", "Available for redelivery or collection"),
    "EMI": ("EVKSP", "Delivered and signed for"),
}
PROVIDERS = {
    "US": ("United States Postal Service", "https://www.usps.com"),
    "FR": ("La Poste", "https://www.laposte.fr"),
    "AU": ("Australia Post", "https://auspost.com.au"),
    "CA": ("Canada Post", "https://www.canadapost-postescanada.ca"),
}
RECIPIENT = "Alex Recipientson"
ALPHA3 = {"GB": "GBR", "US": "USA", "FR": "FRA", "AU": "AUS", "CA": "CAN", "CN": "CHN", "DE": "DEU"}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _refused(
    status: int, message: str, info: str, errors: list[dict[str, str]] | None = None
) -> Response:
    body: dict[str, Any] = {
        "httpCode": str(status),
        "httpMessage": message,
        "moreInformation": info,
    }
    if errors is not None:
        body["errors"] = errors
    return _json(body, status)


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()

    @api.get("/mailpieces/v2/{mail_piece_id}/events")
    async def events(
        mail_piece_id: str,
        client_id: Annotated[str | None, Header(alias="X-IBM-Client-Id")] = None,
        client_secret: Annotated[str | None, Header(alias="X-IBM-Client-Secret")] = None,
        terms: Annotated[str | None, Header(alias="X-Accept-RMG-Terms")] = None,
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            body = b'{"httpCode":"503","httpMessage":"Service Unavailable"}'
            return failure_response(failure, body, "application/json")
        expected = state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)
        if (client_id, client_secret) != (expected["client_id"], expected["client_secret"]):
            return _refused(401, "Unauthorized", "Client id not registered.")
        if (terms or "").lower() != "yes":
            return _refused(400, "Bad Request", "X-Accept-RMG-Terms must be 'yes'.")
        script = state.find(CARRIER, mail_piece_id)
        visible = state.visible(script) if script is not None else []
        if script is None or not visible:
            error = {
                "errorCode": "E1142",
                "errorDescription": f"Barcode reference {mail_piece_id} isn't recognised",
                "errorCause": "A mail item with that barcode cannot be located",
                "errorResolution": "Check barcode and resubmit",
            }
            return _refused(404, "Not Found", "Barcode not recognised.", [error])
        return _json({"mailPieces": _piece(script.tracking_number, visible)})

    return api


def _piece(number: str, visible: list[tuple[Scan, datetime]]) -> dict[str, Any]:
    events = [_event(scan, local) for scan, local in reversed(visible)]
    latest = events[0]
    origin = visible[0][0].country or "GB"
    destination = next(
        (s.country for s, _ in reversed(visible) if s.country not in (None, origin)), origin
    )
    summary: dict[str, Any] = {
        "uniqueItemId": f"0903675740000{number[-8:]}",
        "oneDBarcode": number,
        "productId": "MP7" if destination != origin else "SD2",
        "productName": "International Tracked"
        if destination != origin
        else "Special Delivery Guaranteed",
        "destinationCountryCode": ALPHA3.get(destination, destination),
        "originCountryCode": ALPHA3.get(origin, origin),
        "lastEventCode": latest["eventCode"],
        "lastEventName": latest["eventName"],
        "lastEventDateTime": latest["eventDateTime"],
        "statusCategory": "DELIVERED" if latest["eventCode"] == "EVKSP" else "IN TRANSIT",
    }
    if destination != "GB" and destination in PROVIDERS:
        title, url = PROVIDERS[destination]
        summary["internationalPostalProvider"] = {"title": title, "url": url, "description": title}
    piece: dict[str, Any] = {
        "mailPieceId": summary["uniqueItemId"],
        "carrierShortName": "RM",
        "carrierFullName": "Royal Mail Group Ltd",
        "summary": summary,
        "events": events,
    }
    if latest["eventCode"] == "EVKSP":
        piece["signature"] = {"recipientName": RECIPIENT, "signatureDateTime": latest["eventDateTime"],
                              "imageId": "001234"}  # fmt: skip
    return piece


def _event(scan: Scan, local: datetime) -> dict[str, Any]:
    code, name = FROM_UPU.get(scan.code, (scan.code, scan.text))
    return {
        "eventCode": code,
        "eventName": name if scan.code in FROM_UPU else scan.text,
        "eventDateTime": local.isoformat(timespec="seconds"),
        "locationName": scan.city,
    }


def demo_script(number: str, started_at: datetime) -> CarrierScript:
    """International Tracked Chelmsford → Paris: Royal Mail's steps, La Poste delivering."""
    ldn, par = "Europe/London", "Europe/Paris"

    def at(hours: float, code: str, text: str, city: str, country: str, zone: str) -> Scan:
        return Scan(timedelta(hours=hours), code, text, city, country, zone)

    return CarrierScript(
        tracking_number=number,
        started_at=started_at,
        scans=[
            at(0, "EMA", "", "Chelmsford Post Office", "GB", ldn),
            at(9, "EMB", "", "Heathrow Worldwide DC", "GB", ldn),
            at(20, "EMC", "", "Heathrow Worldwide DC", "GB", ldn),
            at(44, "EMD", "Item received in the destination country", "France", "FR", par),
            at(70, "EMI", "Delivered", "France", "FR", par),
        ],
    )  # fmt: skip

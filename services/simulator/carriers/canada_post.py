"""Sandbox: Canada Post Tracking v2.

``GET /vis/track/pin/{pin}/detail`` with HTTP Basic and ``Accept:
application/vnd.cpc.track-v2+xml``. Bad credentials are 401 and an unknown PIN is 404, both as
``<messages><message><code/><description/></message></messages>`` (``004`` = no PIN history).
``significant-events/occurrence`` are newest first with ``event-identifier`` as a string with
leading zeros, local ``event-date`` / ``event-time`` and the zone abbreviation (``EST``/``EDT``),
``event-site`` and ``event-province``, and ``signatory-name`` on the delivery.
Codes other than ``0174`` (out for delivery), ``1496`` (delivered) and ``20`` (signature
recorded) are the sandbox's own; the texts carry the meaning, as in the real feed.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Annotated
from xml.sax.saxutils import escape

from fastapi import APIRouter, Header
from fastapi.responses import Response

from services.simulator.carriers import CarrierScript, Scan, ScriptState, failure_response

CARRIER = "canada-post"
DEFAULT_CREDENTIALS = {"user": "demo-canada-post-user", "password": "demo-canada-post-password"}
MEDIA_TYPE = "application/vnd.cpc.track-v2+xml"
TRACK_NS = "http://www.canadapost.ca/ws/track-v2"
MESSAGES_NS = "http://www.canadapost.ca/ws/messages"
FROM_UPU: dict[str, tuple[str, str]] = {
    "EMA": ("0100", "Item accepted at the Post Office"),
    "EMD": ("0170", "Item has arrived in Canada"),
    "EDB": ("0903", "Item being reviewed by Canada Border Services Agency"),
    "EDC": ("0904", "Item released by Canada Border Services Agency"),
    "EDD": ("0173", "Item processed"),
    "EDG": ("0174", "Item out for delivery"),
    "EMH": ("1100", "Delivery attempted - notice card left"),
    "EDH": ("0168", "Item available for pickup at Post Office"),
    "EMI": ("1496", "Item successfully delivered"),
}
SIGNATORY = "R RECIPIENTSON"


def _messages(status: int, code: str, description: str) -> Response:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><messages xmlns="{MESSAGES_NS}"><message>'
        f"<code>{code}</code><description>{escape(description)}</description></message></messages>"
    )
    return Response(body.encode(), status_code=status, media_type=MEDIA_TYPE)


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()

    @api.get("/vis/track/pin/{pin}/detail")
    async def detail(
        pin: str,
        authorization: Annotated[str | None, Header()] = None,
        accept: Annotated[str | None, Header()] = None,
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            return failure_response(
                failure, b"<html><body>Service Unavailable</body></html>", "text/html"
            )
        expected = state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)
        basic = base64.b64encode(f"{expected['user']}:{expected['password']}".encode()).decode()
        if authorization != f"Basic {basic}":
            return _messages(401, "E002", "AA004: You cannot track using these credentials.")
        if MEDIA_TYPE not in (accept or ""):
            return _messages(406, "E001", f"Accept header must be {MEDIA_TYPE}.")
        script = state.find(CARRIER, pin)
        visible = state.visible(script) if script is not None else []
        if script is None or not visible:
            return _messages(404, "004", "No Pin History")
        occurrences = "".join(_occurrence(scan, local) for scan, local in reversed(visible))
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><tracking-detail xmlns="{TRACK_NS}">'
            f"<pin>{escape(script.tracking_number)}</pin><active-exists>1</active-exists>"
            f"<original-pin/><return-pin/><service-name>Expedited Parcels</service-name>"
            f"<significant-events>{occurrences}</significant-events></tracking-detail>"
        )
        return Response(body.encode(), media_type=MEDIA_TYPE)

    return api


def _occurrence(scan: Scan, local: datetime) -> str:
    code, text = FROM_UPU.get(scan.code, (scan.code, scan.text))
    city, _, province = (scan.city or "").partition(",")
    signatory = f"<signatory-name>{SIGNATORY}</signatory-name>" if code == "1496" else ""
    return (
        f"<occurrence><event-identifier>{escape(code)}</event-identifier>"
        f"<event-date>{local.strftime('%Y-%m-%d')}</event-date>"
        f"<event-time>{local.strftime('%H:%M:%S')}</event-time>"
        f"<event-time-zone>{local.tzname() or 'UTC'}</event-time-zone>"
        f"<event-description>{escape(text if scan.code in FROM_UPU else scan.text)}</event-description>"
        f"{signatory}<event-site>{escape(city.strip().upper())}</event-site>"
        f"<event-province>{escape(province.strip().upper())}</event-province></occurrence>"
    )


def demo_script(number: str, started_at: datetime) -> CarrierScript:
    """Expedited Parcels Vancouver → Ottawa, delivered against a signature."""
    van, ott = "America/Vancouver", "America/Toronto"

    def at(hours: float, code: str, city: str, zone: str) -> Scan:
        return Scan(timedelta(hours=hours), code, "", city, "CA", zone)

    return CarrierScript(
        tracking_number=number,
        started_at=started_at,
        scans=[
            at(0, "EMA", "VANCOUVER, BC", van),
            at(8, "EDD", "RICHMOND, BC", van),
            at(60, "EDD", "OTTAWA, ON", ott),
            at(70, "EDG", "OTTAWA, ON", ott),
            at(75, "EMI", "OTTAWA, ON", ott),
        ],
    )  # fmt: skip

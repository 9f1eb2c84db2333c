"""Sandbox: USPS Tracking API v3 with its OAuth 2 client-credentials token endpoint.

``POST /oauth2/v3/token`` (JSON or form: ``grant_type=client_credentials``, ``client_id``,
``client_secret``) → ``{access_token, token_type: "Bearer", expires_in}``; a wrong client is 401
``{error: "invalid_client", error_description, error_uri}``. ``GET /tracking/v3/tracking/{n}
?expand=DETAIL`` needs the bearer token (401 problem otherwise) and answers in USPS's shape:
``trackingNumber`` is the number the script answers with (the PIC, even when asked by another
alias), events newest first with a LOCAL minute-precision ``eventTimestamp``, ``GMTTimestamp``
with ``Z`` and ``GMTOffset``, string ``eventCode`` (``03``, ``OF``, ``01``), facility names in
``eventCity`` with null state and ZIP. An unknown number is 404 with USPS's error object.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from services.simulator.carriers import CarrierScript, Scan, ScriptState, failure_response

CARRIER = "usps"
DEFAULT_CREDENTIALS = {"client_id": "demo-usps-client", "client_secret": "demo-usps-secret"}
# UPU steps in USPS's vocabulary: (eventCode, eventType).
FROM_UPU: dict[str, tuple[str, str]] = {
    "EMA": ("", "Origin Post is Preparing Shipment"),
    "EMC": ("", "Departed"),
    "EMD": ("", "Processed Through Facility"),
    "EDB": ("", "Inbound Into Customs"),
    "EDC": ("", "Customs Clearance Processing Complete"),
    "EMF": ("", "Departed"),
    "EDD": ("A1", "Arrived at USPS Regional Facility"),
    "EDE": ("T1", "Departed USPS Regional Facility"),
    "EMG": ("07", "Arrived at Post Office"),
    "EDG": ("OF", "Out for Delivery"),
    "EMH": ("02", "Notice Left (No Authorized Recipient Available)"),
    "EDH": ("16", "Available for Pickup"),
    "EMI": ("01", "Delivered, In/At Mailbox"),
}
COUNTRY_NAMES = {"CN": "CHINA", "GB": "UNITED KINGDOM", "FR": "FRANCE", "DE": "GERMANY",
                 "HK": "HONG KONG", "CA": "CANADA", "AU": "AUSTRALIA", "JP": "JAPAN"}  # fmt: skip
RECIPIENT = {"name": "JANE RECIPIENTSON", "firm": "RECIPIENTSON HOLDINGS"}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(status: int, message: str, title: str, detail: str) -> Response:
    error = {"status": str(status), "code": str(status), "title": title, "detail": detail}
    return _json({"apiVersion": "v3", "error": {"code": str(status), "message": message,
                                                 "errors": [error]}}, status)  # fmt: skip


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()
    tokens: set[str] = set()

    @api.post("/oauth2/v3/token")
    async def token(request: Request) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            return failure_response(failure, b'{"error":"server_error"}', "application/json")
        form = await _credentials(request)
        expected = state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)
        if form.get("grant_type") != "client_credentials" or any(
            form.get(k) != v for k, v in expected.items()
        ):
            return _json({"error": "invalid_client", "error_description": "Client authentication failed.",
                          "error_uri": "https://developers.usps.com"}, 401)  # fmt: skip
        issued = secrets.token_urlsafe(24)
        tokens.add(issued)
        return _json({"access_token": issued, "token_type": "Bearer", "expires_in": 28799,
                      "scope": "tracking", "status": "approved"})  # fmt: skip

    @api.get("/tracking/v3/tracking/{number}")
    async def tracking(
        number: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            return failure_response(failure, b'{"error":{"code":"503"}}', "application/json")
        bearer = (authorization or "").removeprefix("Bearer ").strip()
        if bearer not in tokens:
            return _error(401, "Unauthorized", "Unauthorized", "Invalid or expired access token.")
        script = state.find(CARRIER, number)
        visible = state.visible(script) if script is not None else []
        if script is None or not visible:
            return _error(404, "Not Found", "Tracking number not found",
                          f"The tracking number {number} could not be located.")  # fmt: skip
        events = [_event(scan, local) for scan, local in reversed(visible)]
        return _json(_shipment(script.tracking_number, visible, events))

    return api


async def _credentials(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            doc = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return {}
        return {k: v for k, v in doc.items() if isinstance(v, str)} if isinstance(doc, dict) else {}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _shipment(
    number: str, visible: list[tuple[Scan, datetime]], events: list[dict[str, Any]]
) -> dict[str, Any]:
    latest = events[0]
    return {
        "trackingNumber": number,
        "mailClass": "First-Class Package International Service",
        "status": latest["eventType"],
        "statusCategory": "Delivered" if latest["eventCode"] == "01" else "In Transit",
        "statusSummary": f"Your item's latest event: {latest['eventType']}.",
        "emailEnabled": "true",
        "mailPieceIntakeDate": visible[0][1].strftime("%Y-%m-%d %H:%M:%S.000000"),
        "trackingEvents": events,
    }


def _event(scan: Scan, local: datetime) -> dict[str, Any]:
    code, text = FROM_UPU.get(scan.code, (scan.code, scan.text))
    city, _, state_code = (scan.city or "").partition(",")
    domestic = scan.country in (None, "US")
    event: dict[str, Any] = {
        "eventType": text if scan.code in FROM_UPU else scan.text,
        "eventTimestamp": local.replace(tzinfo=None).isoformat(timespec="minutes") + ":00",
        "GMTTimestamp": local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "GMTOffset": local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:],
        "eventCountry": None if domestic else COUNTRY_NAMES.get(scan.country or "", scan.country),
        "eventCity": city.strip() or None,
        "eventState": state_code.strip() or None,
        "eventZIP": None,
        "firm": None,
        "name": None,
        "authorizedAgent": "false",
        "eventCode": code,
    }
    if code == "01":
        event.update(RECIPIENT)
    return event


def demo_script(number: str, started_at: datetime) -> CarrierScript:
    """An inbound ePacket as USPS shows it: the origin post's steps, then ISC New York to Queens."""
    sz, ny = "Asia/Shanghai", "America/New_York"

    def at(hours: float, code: str, text: str, city: str, country: str, zone: str) -> Scan:
        return Scan(timedelta(hours=hours), code, text, city, country, zone)

    return CarrierScript(
        tracking_number=number,
        started_at=started_at,
        scans=[
            at(0, "EMA", "", "SHENZHEN", "CN", sz),
            at(33.5, "EMC", "", "GUANGZHOU", "CN", sz),
            at(92, "EMD", "", "ISC NEW YORK NY(USPS)", "US", ny),
            at(94, "EDB", "", "ISC NEW YORK NY(USPS)", "US", ny),
            at(109.5, "EDC", "", "ISC NEW YORK NY(USPS)", "US", ny),
            at(140, "EDD", "", "QUEENS NY DISTRIBUTION CENTER", "US", ny),
            at(153, "EMG", "", "QUEENS, NY", "US", ny),
            at(155, "EDG", "", "QUEENS, NY", "US", ny),
            at(160, "EMI", "", "QUEENS, NY", "US", ny),
        ],
    )  # fmt: skip

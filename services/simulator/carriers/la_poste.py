"""Sandbox: La Poste / Colissimo Suivi v2.

``GET /suivi/v2/idships/{id[,id]}?lang=fr_FR`` with ``X-Okapi-Key`` (401 Okapi error without it).
The root is an array with one element per id, each with its own ``returnCode``: 200 with a
``shipment``, or 104 "numéro inconnu" — inside HTTP 200 when another id was found, HTTP 404 when
none was. ``shipment.event[]`` is newest first: ``code``, French ``label``, ISO ``date`` with the
Paris offset; no locations; ``timeline[]`` milestones alongside.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Header
from fastapi.responses import Response

from services.simulator.carriers import CarrierScript, Scan, ScriptState, failure_response

CARRIER = "la-poste"
DEFAULT_CREDENTIALS = {"api_key": "demo-la-poste-okapi-key"}
PARIS = ZoneInfo("Europe/Paris")
FROM_UPU: dict[str, tuple[str, str]] = {
    "EMA": ("PC1", "Votre colis est pris en charge par La Poste."),
    "EMB": ("ET1", "Votre colis est en cours d'acheminement."),
    "EMC": ("ET2", "Votre colis est en cours de traitement dans le pays d'expédition."),
    "EMD": ("ET3", "Votre colis est arrivé dans le pays de destination."),
    "EDB": ("DO1", "Votre colis est entré en douane."),
    "EDC": ("DO2", "Votre colis est sorti de douane."),
    "EME": ("DO3", "Votre colis est retenu en douane."),
    "EMG": ("ET3", "Votre colis est arrivé sur son site de distribution."),
    "EDG": ("MD2", "Votre colis est en cours de livraison."),
    "EMH": ("ND1", "Votre colis n'a pas pu être livré : destinataire absent."),
    "EDH": ("AG1", "Votre colis vous attend dans votre point de retrait."),
    "EMI": ("DI1", "Votre colis est livré."),
}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def router(state: ScriptState) -> APIRouter:
    api = APIRouter()

    @api.get("/suivi/v2/idships/{ids}")
    async def idships(
        ids: str,
        lang: str = "fr_FR",
        okapi_key: Annotated[str | None, Header(alias="X-Okapi-Key")] = None,
    ) -> Response:
        failure = state.take_failure(CARRIER)
        if failure is not None:
            body = b'{"code":"SERVICE_UNAVAILABLE","message":"Service indisponible"}'
            return failure_response(failure, body, "application/json")
        if okapi_key != state.credentials_for(CARRIER, DEFAULT_CREDENTIALS)["api_key"]:
            return _json(
                {"code": "UNAUTHORIZED", "message": "The request requires user authentication"}, 401
            )
        answers = [_answer(state, i.strip(), lang) for i in ids.split(",") if i.strip()]
        found = any(a["returnCode"] == 200 for a in answers)
        return _json(answers, 200 if found else 404)

    return api


def _answer(state: ScriptState, id_ship: str, lang: str) -> dict[str, Any]:
    script = state.find(CARRIER, id_ship)
    visible = state.visible(script) if script is not None else []
    if script is None or not visible:
        return {"lang": lang, "returnCode": 104, "idShip": id_ship,
                "returnMessage": f"Le numéro {id_ship} ne correspond à aucun envoi."}  # fmt: skip
    events = [_event(scan, local) for scan, local in reversed(visible)]
    delivered = events[0]["code"] == "DI1"
    countries = [s.country for s, _ in visible if s.country]
    shipment = {
        "idShip": script.tracking_number,
        "holder": 4,
        "product": "colissimo",
        "isFinal": delivered,
        "entryDate": events[-1]["date"],
        "event": events,
        "timeline": [
            {
                "id": 1,
                "shortLabel": "Pris en charge",
                "status": True,
                "type": 1,
                "date": events[-1]["date"],
            }
        ],  # fmt: skip
        "contextData": {
            "originCountry": countries[0] if countries else "FR",
            "arrivalCountry": countries[-1] if countries else "FR",
        },  # fmt: skip
        "url": f"https://www.laposte.fr/outils/suivre-vos-envois?code={script.tracking_number}",
    }
    if delivered:
        shipment["deliveryDate"] = events[0]["date"]
    return {"lang": lang, "scope": "open", "returnCode": 200, "shipment": shipment}


def _event(scan: Scan, local: datetime) -> dict[str, Any]:
    code, label = FROM_UPU.get(scan.code, (scan.code, scan.text))
    when = local.astimezone(PARIS) if scan.zone is None else local
    return {"code": code, "label": label if scan.code in FROM_UPU else scan.text,
            "date": when.isoformat(timespec="seconds")}  # fmt: skip


def demo_script(number: str, started_at: datetime) -> CarrierScript:
    """Colissimo Lyon → Paris: a failed attempt, the post office, then delivery."""

    def at(hours: float, code: str) -> Scan:
        return Scan(timedelta(hours=hours), code, "", "PARIS", "FR", "Europe/Paris")

    return CarrierScript(
        tracking_number=number,
        started_at=started_at,
        scans=[at(0, "EMA"), at(10, "EMB"), at(30, "EMG"), at(32, "EDG"), at(35, "EMH"),
               at(40, "EDH"), at(60, "EMI")],
    )  # fmt: skip

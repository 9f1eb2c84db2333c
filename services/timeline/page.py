"""The consumer tracking page: a parcel's end-to-end timeline as plain, accessible HTML.

``GET /t/{tracking_number}`` renders the same public view as ``GET /v1/tracking/{number}``
(``views.public_timeline``), so it can show nothing the JSON endpoint does not. Every piece of
carrier text reaches the page through Jinja2 with autoescaping on.
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined

from services.timeline import repository
from services.timeline.page_view import ParcelView, parcel_view
from services.timeline.schemas import TrackingOut
from services.timeline.views import public_timeline
from shared.errors import InvalidInput
from shared.http import SessionDep
from shared.numbers import normalise

router = APIRouter(include_in_schema=False)

# No script runs on these pages; the policy makes sure none ever does, even if escaping failed.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@functools.cache
def templates() -> Environment:
    return Environment(
        loader=PackageLoader("services.timeline", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _page(
    request: Request,
    kind: str,
    status_code: int = 200,
    parcel: ParcelView | None = None,
    **context: Any,
) -> HTMLResponse:
    values = {
        "kind": kind,
        "parcel": parcel,
        "search_url": request.url_for("tracking_search").path,
        "query": "",
        "error": None,
        "retry_after": None,
        **context,
    }
    html = templates().get_template("tracking.html").render(values)
    return HTMLResponse(html, status_code=status_code, headers=_HEADERS)


def _invalid(request: Request, raw: str, exc: InvalidInput) -> HTMLResponse:
    message = str(exc)
    return _page(request, "invalid", 422, query=raw[:80], error=message[:1].upper() + message[1:])


def _rate_limited(request: Request) -> HTMLResponse | None:
    """The JSON endpoint's limiter: one budget per client across both representations."""
    wait: float = request.app.state.public_limiter.check(
        request.client.host if request.client else "unknown"
    )
    if not wait:
        return None
    retry = int(wait) + 1
    page = _page(request, "rate_limited", 429, retry_after=retry)
    page.headers["Retry-After"] = str(retry)
    return page


async def _tracking(session: SessionDep, number: str) -> TrackingOut | None:
    """The data path of ``api.track``: any of the parcel's numbers opens the whole timeline."""
    shipment = await repository.find_by_any_number(session, number)
    if shipment is None:
        return None
    numbers = {(leg.carrier, leg.tracking_number) for leg in shipment.legs}
    events = await repository.events_for_numbers(session, numbers)
    return public_timeline(number, shipment, [e for rows in events.values() for e in rows])


@router.get("/t", response_class=HTMLResponse, name="tracking_search")
async def search(request: Request, number: str = "") -> Response:
    """The search form's target: a well-formed number redirects to its page."""
    if not number.strip():
        return _page(request, "search")
    try:
        normalised = normalise(number)
    except InvalidInput as exc:
        return _invalid(request, number, exc)
    target = request.url_for("tracking_page", tracking_number=normalised).path
    return RedirectResponse(target, status_code=303)


@router.get("/t/{tracking_number}", response_class=HTMLResponse, name="tracking_page")
async def tracking_page(tracking_number: str, session: SessionDep, request: Request) -> Response:
    """One parcel's journey across origin, international and destination, by any of its numbers."""
    limited = _rate_limited(request)
    if limited is not None:
        return limited
    try:
        number = normalise(tracking_number)
    except InvalidInput as exc:
        return _invalid(request, tracking_number, exc)
    tracking = await _tracking(session, number)
    if tracking is None:
        return _page(request, "not_found", 404, query=number)
    api_url = f"{request.scope.get('root_path', '')}/v1/tracking/{number}"
    return _page(request, "parcel", parcel=parcel_view(tracking), query=number, api_url=api_url)

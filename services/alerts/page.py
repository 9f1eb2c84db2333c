"""The operators' console at ``/ops``: a server-rendered shell and one small script, no build step.

The page holds no data of its own: it asks the operator API for everything with the operator's key
(kept in the tab's sessionStorage, sent as a bearer header) and follows ``GET /v1/alerts/stream``
with a short-lived stream token (see ``services.alerts.tokens``). The Content-Security-Policy lets
only the page's own script run and only talk to this origin, so even text that slipped past the
script's ``textContent`` could not run.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined

router = APIRouter(include_in_schema=False)

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@functools.cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("services.alerts", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
    )


@functools.cache
def _script() -> bytes:
    return resources.files("services.alerts").joinpath("static/ops.js").read_bytes()


@router.get("/ops", response_class=HTMLResponse, name="ops_console")
async def console(request: Request) -> HTMLResponse:
    """The operators' console: alert feed, counts, carrier health, drill-down into timelines."""
    root = request.scope.get("root_path", "")
    html = (
        _templates()
        .get_template("ops.html")
        .render(
            api_base=f"{root}/v1",
            tracking_page=f"{root}/t",
            script_url=request.url_for("ops_script").path,
        )
    )
    return HTMLResponse(html, headers=_HEADERS)


@router.get("/ops/ops.js", name="ops_script")
async def script() -> Response:
    return Response(
        _script(),
        media_type="text/javascript",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )

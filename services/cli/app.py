"""The HTTP API process: every service's router behind one error renderer."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from services.cli.runtime import Runtime
from services.timeline.api import router as timeline_router
from shared.http import RateLimiter, install_body_limit, install_error_handlers, problem


def create_api_app(rt: Runtime) -> FastAPI:
    app = FastAPI(
        title="Throughline",
        version="0.1.0",
        description=(
            "One end-to-end timeline for every cross-border parcel, across origin, international "
            "and destination logistics, whichever carriers carry it."
        ),
    )
    app.state.settings = rt.settings
    app.state.sessions = rt.sessions
    app.state.relay = rt.relay
    app.state.public_limiter = RateLimiter(rt.settings.public_rate_per_minute)
    install_error_handlers(app)
    install_body_limit(app, rt.settings.max_body_bytes)
    app.include_router(timeline_router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Readiness: the database answers."""
        try:
            async with rt.engine.connect() as conn:
                await conn.execute(text("select 1"))
        except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
            return problem(503, "Not ready", f"database unavailable: {type(exc).__name__}")
        return JSONResponse({"status": "ready"})

    return app

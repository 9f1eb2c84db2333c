"""The simulator's control API (``/_sim``), for the demo, the tests and the benchmarks.

- ``POST /_sim/journeys`` ``{journey, tracking_number?, speed?, started_at?}`` → 201 with every
  leg's number: ``{"legs": [{"carrier", "tracking_number", "modules"}], ...}``; register the first
  leg's number. A DHL journey (``dhl-*``) or a multi-carrier itinerary; without a number the first
  leg gets a fresh valid one; the same number and ``started_at`` restart it identically.
- ``GET /_sim/journeys`` → ``{"journeys": [running...], "available": [names], "summaries": {..}}``.
- ``POST /_sim/faults`` ``{carrier, mode: "5xx"|"429"|"slow"|"garbage"|"none", count?, duration?
  (real seconds), retry_after_s?, delay_s?}`` for any sandbox's carrier id; without count and
  duration the fault lasts until ``mode: "none"``. ``slow`` and ``garbage`` are played by the DHL
  sandbox only.
- ``GET /_sim/faults`` → failures served so far, per carrier.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import AwareDatetime, BaseModel, Field

from services.simulator.carriers import ScriptState
from services.simulator.journeys import JOURNEYS, valid_dhl_express_number
from services.simulator.multileg import MultiLegJourneys
from services.simulator.state import FaultMode, SimulatorState

__all__ = ["FaultRequest", "StartJourney", "control_router"]

DHL_MODULES = ("origin", "international", "destination")


class StartJourney(BaseModel):
    journey: str
    tracking_number: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$"
    )
    speed: float | None = Field(default=None, gt=0)
    started_at: AwareDatetime | None = Field(
        default=None, description="resume a journey started earlier (same timestamps, same ids)"
    )


class FaultRequest(BaseModel):
    carrier: str
    mode: FaultMode
    count: int | None = Field(default=None, ge=1)
    duration: float | None = Field(default=None, gt=0, description="real seconds")
    retry_after_s: int = Field(default=1, ge=0)
    delay_s: float = Field(default=2.0, ge=0, le=120)


def control_router(
    state: SimulatorState, itineraries: MultiLegJourneys, sandboxes: Collection[str]
) -> APIRouter:
    """``sandboxes``: the carrier ids served through ``itineraries.scripts`` (all but DHL)."""
    router = APIRouter(prefix="/_sim")
    scripts = itineraries.scripts
    names = sorted({*JOURNEYS, *itineraries.catalogue})

    @router.post("/journeys", status_code=201)
    async def start_journey(body: StartJourney) -> dict[str, Any]:
        if body.journey in JOURNEYS:
            return _start_dhl(state, body)
        if body.journey in itineraries.catalogue:
            speed = body.speed or state.default_speed
            running = itineraries.start(body.journey, body.tracking_number, speed, body.started_at)
            return running.describe(state.clock())
        raise HTTPException(422, f"unknown journey {body.journey!r}; known: {names}")

    @router.get("/journeys")
    async def list_journeys() -> dict[str, Any]:
        now = state.clock()
        dhl = [
            {**r.describe(now), "legs": _dhl_legs(r.tracking_number)}
            for r in state.journeys.values()
        ]
        others = [r.describe(now) for r in itineraries.running.values()]
        summaries = {n: j.summary for n, j in itineraries.catalogue.items()}
        summaries.update({n: f"DHL {j.product}, {j.service}" for n, j in JOURNEYS.items()})
        return {"journeys": dhl + others, "available": names, "summaries": summaries}

    @router.post("/faults")
    async def inject_fault(body: FaultRequest) -> dict[str, Any]:
        if body.carrier == "dhl":
            fault = state.set_fault(
                "dhl",
                body.mode,
                count=body.count,
                duration=body.duration,
                retry_after_s=body.retry_after_s,
                delay_s=body.delay_s,
            )
            return {"carrier": "dhl", **fault.describe()}
        if body.carrier not in sandboxes:
            known = sorted({"dhl", *sandboxes})
            raise HTTPException(422, f"unknown carrier {body.carrier!r}; known: {known}")
        return _sandbox_fault(scripts, state, body)

    @router.get("/faults")
    async def served_faults() -> dict[str, Any]:
        return {"served_failures": {**scripts.served_failures, **state.served_failures}}

    return router


def _dhl_legs(number: str) -> list[dict[str, Any]]:
    return [{"carrier": "dhl", "tracking_number": number, "modules": DHL_MODULES}]


def _start_dhl(state: SimulatorState, body: StartJourney) -> dict[str, Any]:
    number = body.tracking_number or valid_dhl_express_number(secrets.randbelow(10**9))
    running = state.start(number, body.journey, body.speed, body.started_at)
    return {**running.describe(state.clock()), "legs": _dhl_legs(number)}


def _sandbox_fault(
    scripts: ScriptState, state: SimulatorState, body: FaultRequest
) -> dict[str, Any]:
    """A fault on a carrier sandbox: an outage in the shared script state."""
    if body.mode in ("slow", "garbage"):
        raise HTTPException(422, f"mode {body.mode!r} is played by the dhl sandbox only")
    if body.mode == "none":
        scripts.clear_outage(body.carrier)
        return {"carrier": body.carrier, "mode": "none", "remaining": None, "until": None}
    status, retry_after = (429, body.retry_after_s) if body.mode == "429" else (503, None)
    until = state.clock() + timedelta(seconds=body.duration) if body.duration else None
    outage = scripts.set_outage(
        body.carrier, status, until=until, count=body.count, retry_after=retry_after
    )
    return {
        "carrier": body.carrier,
        "mode": body.mode,
        "remaining": outage.remaining,
        "until": until.isoformat() if until else None,
        "retry_after_s": retry_after,
    }

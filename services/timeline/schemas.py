"""Wire schemas of the timeline HTTP API (separate from the tables)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Country = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$", to_upper=True)]


class ShipmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_number: str = Field(min_length=1, max_length=64, examples=["1234567891"])
    carrier: str | None = Field(default=None, description="carrier id; detected when omitted")
    merchant_reference: str | None = Field(default=None, max_length=200)
    origin_country: Country | None = None
    destination_country: Country | None = None


class LegOut(BaseModel):
    position: int
    carrier: str
    tracking_number: str
    opened_by: str
    evidence: str | None = None
    confidence: float


class ShipmentOut(BaseModel):
    id: uuid.UUID
    carrier: str
    tracking_number: str
    merchant_reference: str | None
    origin_country: str | None
    destination_country: str | None
    status: str
    substatus: str | None
    module_status: dict[str, str]
    legs: list[LegOut]
    last_event_at: datetime | None
    created_at: datetime
    updated_at: datetime
    tracking_url: str


class PublicLocation(BaseModel):
    city: str | None = None
    region: str | None = None
    country: str | None = None
    facility: str | None = None


class PublicEvent(BaseModel):
    occurred_at: datetime | None = Field(description="UTC instant, null when it cannot be known")
    occurred_at_local: str | None = Field(description="wall-clock time as the carrier wrote it")
    utc_offset: str | None
    time_basis: str
    status: str
    substatus: str | None
    carrier: str
    tracking_number: str
    carrier_code: str | None
    description: str
    location: PublicLocation | None


class ModuleTimeline(BaseModel):
    module: str
    status: str | None = Field(description="this module's own status, null before its first event")
    events: list[PublicEvent]


class PublicLeg(BaseModel):
    position: int
    carrier: str
    tracking_number: str


class TrackingOut(BaseModel):
    """The public end-to-end timeline: no names, addresses, phones or signatures."""

    tracking_number: str
    status: str
    substatus: str | None
    last_event_at: datetime | None
    legs: list[PublicLeg]
    modules: list[ModuleTimeline]

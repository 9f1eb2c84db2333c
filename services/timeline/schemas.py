"""Wire schemas of the timeline HTTP API (separate from the tables)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Country = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$", to_upper=True)]


class ShipmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_number: str = Field(min_length=1, max_length=64, examples=["1234567891"])
    carrier: str | None = Field(default=None, description="carrier id; detected when omitted")
    merchant_reference: str | None = Field(default=None, max_length=200)
    origin_country: Country | None = None
    destination_country: Country | None = None


class LegIn(BaseModel):
    """A leg the merchant knows of (a manifest): another carrier's number for the same parcel."""

    model_config = ConfigDict(extra="forbid")

    carrier: str = Field(min_length=1, max_length=40, examples=["usps"])
    tracking_number: str = Field(min_length=1, max_length=64, examples=["9405803699300124287899"])
    evidence: str | None = Field(
        default=None, max_length=500, description="where the merchant got it, e.g. a manifest id"
    )


class LegOut(BaseModel):
    position: int
    carrier: str
    tracking_number: str
    opened_by: str = Field(
        description="registration, first_event, handoff_field, handoff_text, postal_network, "
        "destination_post, manifest or same_number"
    )
    evidence: str | None = None
    confidence: float
    detected: bool = Field(
        default=False, description="the carrier was inferred from the number's format alone"
    )
    status: str | None = Field(default=None, description="this leg's own status")
    substatus: str | None = None
    module: str | None = None


class CustomsOut(BaseModel):
    """Customs as far as the carriers told: null on a side nobody has reported yet."""

    model_config = ConfigDict(populate_by_name=True)

    export: Literal["presented", "held", "released"] | None = None
    import_: Literal["presented", "held", "released"] | None = Field(default=None, alias="import")
    duties: Literal["payable", "paid"] | None = None


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
    customs: CustomsOut
    next_step: str = Field(description="what happens next, in plain words")
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
    status: str | None = Field(default=None, description="this leg's own status")
    module: str | None = Field(default=None, description="the module this leg was last seen in")


class TrackingOut(BaseModel):
    """The public end-to-end timeline: no names, addresses, phones or signatures."""

    tracking_number: str
    status: str
    substatus: str | None
    last_event_at: datetime | None
    next_step: str = Field(description="what happens next, in plain words")
    customs: CustomsOut
    legs: list[PublicLeg]
    modules: list[ModuleTimeline]

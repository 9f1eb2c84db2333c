"""Tables owned by the timeline service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base, JsonType, utcnow

_ACTIVE = "status NOT IN ('delivered', 'returned') AND merged_into_id IS NULL"


class Shipment(Base):
    __tablename__ = "shipment"
    __table_args__ = (
        UniqueConstraint("tenant_id", "carrier", "tracking_number"),
        # The alerts scan walks unfinished shipments by how long they have been quiet.
        Index(
            "ix_shipment_active_last_event",
            "last_event_at",
            postgresql_where=text(_ACTIVE),
            sqlite_where=text(_ACTIVE),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenant.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(40))
    tracking_number: Mapped[str] = mapped_column(String(64))
    merchant_reference: Mapped[str | None] = mapped_column(String(200))
    origin_country: Mapped[str | None] = mapped_column(String(2))
    destination_country: Mapped[str | None] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(32), default="pending")
    substatus: Mapped[str | None] = mapped_column(String(40))
    module_status: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # {"export": ..., "import": ...: presented | held | released, "duties": payable | paid}
    customs: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    last_event_at: Mapped[datetime | None] = mapped_column()
    # A tenant-less shipment (made for events nobody registered) that turned out to be part of
    # another shipment: its legs moved there and it is kept only as a pointer.
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column()
    # Where the status derivation stands (``status.Fold.state``); NULL: derive afresh.
    derivation: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    legs: Mapped[list[Leg]] = relationship(
        back_populates="shipment", order_by="Leg.position", lazy="selectin"
    )


class Leg(Base):
    """One carrier's tracking number within a shipment, with how it was linked."""

    __tablename__ = "leg"
    __table_args__ = (
        UniqueConstraint("shipment_id", "carrier", "tracking_number"),
        Index("ix_leg_number", "tracking_number", "carrier"),
        Index("ix_leg_shipment_position", "shipment_id", "position"),
        Index("ix_leg_carrier", "carrier"),  # carrier health walks one carrier's legs
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    shipment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shipment.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    carrier: Mapped[str] = mapped_column(String(40))
    tracking_number: Mapped[str] = mapped_column(String(64))
    opened_by: Mapped[str] = mapped_column(String(32), default="registration")
    evidence: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    detected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The leg's own derived state (from its number's events only), for the poller and the views.
    status: Mapped[str | None] = mapped_column(String(32))
    substatus: Mapped[str | None] = mapped_column(String(40))
    module: Mapped[str | None] = mapped_column(String(16))
    derivation: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    shipment: Mapped[Shipment] = relationship(back_populates="legs")


class TrackingEventRow(Base):
    """A stored canonical event; the deterministic ``event_id`` makes re-sent scans collapse."""

    __tablename__ = "tracking_event"
    __table_args__ = (Index("ix_tracking_event_number", "tracking_number", "carrier"),)

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    carrier: Mapped[str] = mapped_column(String(40))
    tracking_number: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime | None] = mapped_column()
    occurred_at_local: Mapped[str | None] = mapped_column(String(40))
    utc_offset: Mapped[str | None] = mapped_column(String(8))
    time_basis: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(32))
    substatus: Mapped[str | None] = mapped_column(String(40))
    module: Mapped[str | None] = mapped_column(String(16))
    carrier_code: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    handoff: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    source: Mapped[str] = mapped_column(String(24))
    raw_ref: Mapped[str | None] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    renormalised_at: Mapped[datetime | None] = mapped_column()

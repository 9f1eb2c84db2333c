"""Tables owned by the carriers service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, LargeBinary, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, JsonType, utcnow


class PollTarget(Base):
    """A number the poller looks after, with its schedule; survives restarts."""

    __tablename__ = "poll_target"
    __table_args__ = (Index("ix_poll_target_due", "active", "next_poll_at"),)

    carrier: Mapped[str] = mapped_column(String(40), primary_key=True)
    tracking_number: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), default="pending")
    substatus: Mapped[str | None] = mapped_column(String(40))
    module: Mapped[str | None] = mapped_column(String(16))
    detected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    next_poll_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_polled_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    failures: Mapped[int] = mapped_column(Integer, default=0)
    not_found: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Re-detection after repeated "not found": the carrier this number moved to / came from.
    redetected_to: Mapped[str | None] = mapped_column(String(40))
    redetected_from: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PollQuota(Base):
    """A carrier's token bucket, shared by every poller process (a carrier's quota is per key)."""

    __tablename__ = "poll_quota"

    carrier: Mapped[str] = mapped_column(String(40), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    refilled_at: Mapped[datetime] = mapped_column()


class RawPayloadRow(Base):
    """A carrier answer as received, so history can be re-normalised after a mapping fix."""

    __tablename__ = "raw_payload"
    __table_args__ = (Index("ix_raw_payload_carrier_received", "carrier", "received_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    carrier: Mapped[str] = mapped_column(String(40))
    tracking_numbers: Mapped[list[Any]] = mapped_column(JsonType)
    source: Mapped[str] = mapped_column(String(24))
    http_status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # exactly as received, NUL bytes and all
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class CarrierPollStat(Base):
    """Poll outcomes of one carrier in one ten-second bucket, added up by every poller (health)."""

    __tablename__ = "carrier_poll_stat"

    carrier: Mapped[str] = mapped_column(String(40), primary_key=True)
    bucket_at: Mapped[datetime] = mapped_column(primary_key=True)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms_sum: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms_max: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_ok_at: Mapped[datetime | None] = mapped_column()

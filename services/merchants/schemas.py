"""Wire schemas of the merchant account API: API keys and bulk registration."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.auth import ApiKey

Country = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$", to_upper=True)]
Scope = Literal["merchant", "operator"]  # shared.auth.SCOPES
MAX_BULK_ROWS = 1000
MAX_ROTATION_GRACE_S = 7 * 86400


def _merchant_only() -> list[Scope]:
    return ["merchant"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyIn(_In):
    scopes: list[Scope] = Field(
        default_factory=_merchant_only, min_length=1, description="at most your key's own"
    )


class RotateKeyIn(_In):
    expires_in_s: int = Field(
        default=0,
        ge=0,
        le=MAX_ROTATION_GRACE_S,
        description="the old key keeps working this long (0: revoked at once; at most 7 days)",
    )


class KeyOut(BaseModel):
    id: uuid.UUID
    prefix: str = Field(description="the public start of the key: tl_<prefix>_...")
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = Field(description="in the future while a rotated key expires")
    active: bool
    current: bool = Field(description="the key this request was made with")

    @classmethod
    def of(cls, key: ApiKey, now: datetime, current_id: uuid.UUID) -> KeyOut:
        return cls(
            id=key.id,
            prefix=f"tl_{key.prefix}_",
            scopes=list(key.scopes),
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            active=key.revoked_at is None or key.revoked_at > now,
            current=key.id == current_id,
        )


class KeyCreated(KeyOut):
    key: str = Field(description="shown once; only its hash is stored")


class KeyList(BaseModel):
    data: list[KeyOut]


class BulkRow(_In):
    """One shipment to register (the fields of POST /v1/shipments)."""

    tracking_number: str = Field(min_length=1, max_length=64)
    carrier: str | None = None
    merchant_reference: str | None = Field(default=None, max_length=200)
    origin_country: Country | None = None
    destination_country: Country | None = None


class BulkIn(_In):
    shipments: list[Any] = Field(
        min_length=1,
        max_length=MAX_BULK_ROWS,
        description="up to 1,000 objects with the fields of POST /v1/shipments",
    )


class RowResult(BaseModel):
    index: int = Field(description="position in the request, from 0")
    status: Literal["created", "existing", "error"]
    shipment_id: uuid.UUID | None = None
    carrier: str | None = None
    tracking_number: str | None = Field(default=None, description="normalised when registered")
    error: str | None = None


class BulkOut(BaseModel):
    created: int
    existing: int
    errors: int
    results: list[RowResult]

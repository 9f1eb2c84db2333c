"""The consumer encodes shipment updates straight from its state; the bytes must be what
``shared.schema.encode`` makes of the same ``ShipmentUpdate``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.timeline.legs import LegState, ShipmentState, update_record
from shared.schema import LegRef, ShipmentUpdate, decode, encode
from shared.taxonomy import Module, Status, Substatus

AT = datetime(2024, 3, 1, 8, 0, 12, 345678, tzinfo=UTC)


def shipment(tenant: uuid.UUID | None) -> ShipmentState:
    s = ShipmentState.create("china-post", "RR123456785CN", tenant)
    s.status, s.substatus, s.last_event_at = "in_transit", "arrived_destination_country", AT
    s.updated_at = AT.replace(microsecond=0)
    for position, (carrier, status, substatus, module, detected) in enumerate(
        [
            ("china-post", "in_transit", "arrived_destination_country", "international", True),
            ("royal-mail", None, None, None, False),
        ]
    ):
        s.legs.append(
            LegState(uuid.uuid4(), s.id, position, carrier, "RR123456785CN", "registration", None,
                     1.0, detected, AT, status, substatus, module)
        )  # fmt: skip
    return s


def test_update_record_is_the_encoded_shipment_update() -> None:
    for tenant in (uuid.uuid4(), None):
        s = shipment(tenant)
        record = update_record(s, "info_received", [("royal-mail", "RR123456785CN")])
        refs = [
            LegRef(carrier="china-post", tracking_number="RR123456785CN", status=Status.IN_TRANSIT,
                   substatus=Substatus.ARRIVED_DESTINATION_COUNTRY, module=Module.INTERNATIONAL,
                   detected=True),
            LegRef(carrier="royal-mail", tracking_number="RR123456785CN"),
        ]  # fmt: skip
        expected = ShipmentUpdate(
            shipment_id=s.id,
            tenant_id=tenant,
            status=Status.IN_TRANSIT,
            substatus=Substatus.ARRIVED_DESTINATION_COUNTRY,
            previous_status=Status.INFO_RECEIVED,
            legs=refs,
            added_legs=refs[1:],
            last_event_at=AT,
            updated_at=AT.replace(microsecond=0),
        )
        assert record.key == str(s.id)
        assert record.value == encode(expected)
        assert decode(record.value) == expected


def test_unchanged_status_has_no_previous_status() -> None:
    s = shipment(None)
    update = decode(update_record(s, "in_transit", []).value)
    assert isinstance(update, ShipmentUpdate)
    assert update.previous_status is None and update.added_legs == []
    first = decode(update_record(s, "pending", []).value)
    assert isinstance(first, ShipmentUpdate) and first.previous_status is Status.PENDING

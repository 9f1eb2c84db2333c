"""Shipment updates → webhook events (deterministic ids), and the retry schedule."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from services.webhooks import events as ev
from services.webhooks.schedule import MAX_ATTEMPTS, SCHEDULE_S, next_delay, parse_retry_after
from shared.schema import AlertChange, LegRef, ShipmentUpdate
from shared.taxonomy import Status

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
TENANT = uuid.UUID(int=1)
SHIPMENT = uuid.UUID(int=2)
DHL = ("dhl", "1234567891")
LEG = {"carrier": "dhl", "tracking_number": "1234567891"}
UPS = ("ups", "1Z999AA10123456784")


def update(
    status: Status,
    previous: Status | None = None,
    legs: tuple[tuple[str, str], ...] = (DHL,),
    at: datetime = T0,
    tenant: uuid.UUID | None = TENANT,
) -> ShipmentUpdate:
    return ShipmentUpdate(
        shipment_id=SHIPMENT,
        tenant_id=tenant,
        status=status,
        previous_status=previous,
        legs=[LegRef(carrier=c, tracking_number=n) for c, n in legs],
        updated_at=at,
    )


def types(events: list[ev.NewEvent]) -> list[str]:
    return [e.type for e in events]


def test_registration_is_no_event() -> None:
    assert ev.events_for_update(update(Status.PENDING), None) == []


def test_status_change_and_its_specific_events() -> None:
    moved = ev.events_for_update(update(Status.IN_TRANSIT, Status.PENDING), [DHL])
    assert types(moved) == [ev.STATUS_CHANGED]
    delivered = ev.events_for_update(update(Status.DELIVERED, Status.OUT_FOR_DELIVERY), [DHL])
    assert types(delivered) == [ev.STATUS_CHANGED, ev.DELIVERED]
    held = ev.events_for_update(update(Status.EXCEPTION, Status.IN_TRANSIT), [DHL])
    assert types(held) == [ev.STATUS_CHANGED, ev.EXCEPTION]
    body = orjson.loads(delivered[1].body)
    assert body["type"] == "shipment.delivered" and body["timestamp"] == "2024-03-01T08:00:00Z"
    assert body["data"]["status"] == "delivered"
    assert body["data"]["previous_status"] == "out_for_delivery"
    assert body["data"]["tracking_number"] == "1234567891"


def test_new_legs_are_leg_added_events() -> None:
    two = update(Status.IN_TRANSIT, legs=(DHL, UPS))
    added = ev.events_for_update(two, [DHL])
    assert types(added) == [ev.LEG_ADDED]
    assert orjson.loads(added[0].body)["data"]["leg"]["tracking_number"] == UPS[1]
    assert ev.events_for_update(two, [DHL, UPS]) == []
    # First sight of a shipment that already has two legs: the first is its registration.
    assert types(ev.events_for_update(two, None)) == [ev.LEG_ADDED]


def test_ids_are_deterministic_and_distinct() -> None:
    u = update(Status.DELIVERED, Status.IN_TRANSIT, legs=(DHL, UPS))
    first = ev.events_for_update(u, [DHL])
    assert [e.id for e in first] == [e.id for e in ev.events_for_update(u, [DHL])]
    assert len({e.id for e in first}) == len(first) == 3
    later = ev.events_for_update(
        update(Status.DELIVERED, Status.IN_TRANSIT, at=T0 + timedelta(seconds=1)), [DHL]
    )
    assert not {e.id for e in later} & {e.id for e in first}


def test_unregistered_shipments_notify_nobody() -> None:
    assert (
        ev.events_for_update(update(Status.DELIVERED, Status.IN_TRANSIT, tenant=None), None) == []
    )


def _opened(alert_id: uuid.UUID, at: datetime) -> AlertChange:
    return AlertChange(
        change="opened",
        alert_id=alert_id,
        alert_kind="shipment",
        tenant_id=TENANT,
        rule_key="linehaul",
        severity="warning",
        state="open",
        shipment_id=SHIPMENT,
        carrier="dhl",
        lane="CN-US",
        status="in_transit",
        substatus="departed_origin_country",
        threshold_s=432000.0,
        threshold_source="learned p90 over 120",
        last_event_at=T0,
        silent_since=T0,
        opened_at=at,
        changed_at=at,
    )


def test_stale_event_is_one_per_alert() -> None:
    alert = uuid.uuid4()
    a = ev.stale_event(_opened(alert, T0 + timedelta(days=8)), [LEG])
    b = ev.stale_event(_opened(alert, T0 + timedelta(days=9)), [LEG])  # a replay
    assert a.id == b.id and a.type == ev.STALE and a.tenant_id == TENANT
    data = orjson.loads(a.body)["data"]
    assert data["alert"]["threshold_source"] == "learned p90 over 120"
    assert (data["carrier"], data["quiet_since"]) == (LEG["carrier"], "2024-03-01T08:00:00Z")
    c = ev.stale_event(_opened(uuid.uuid4(), T0 + timedelta(days=8)), [LEG])
    assert c.id != a.id


def test_every_event_type_is_documented() -> None:
    assert set(ev.EVENT_TYPES) == {
        "shipment.status_changed",
        "shipment.leg_added",
        "shipment.delivered",
        "shipment.exception",
        "shipment.stale",
        "endpoint.disabled",
    }


def test_schedule_is_the_standard_one_with_jitter() -> None:
    assert SCHEDULE_S == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    rng = random.Random(7)
    for made in range(1, MAX_ATTEMPTS):
        delay = next_delay(made, rng=rng)
        assert delay is not None
        assert 0.8 * SCHEDULE_S[made] <= delay <= 1.2 * SCHEDULE_S[made]
    assert next_delay(MAX_ATTEMPTS) is None
    assert next_delay(1, scale=0.001, rng=rng) == pytest.approx(0.005, rel=0.21)


def test_retry_after_is_a_floor_and_capped() -> None:
    assert next_delay(1, scale=0.001, retry_after_s=30) == 30
    assert next_delay(3, retry_after_s=10) >= 1800 * 0.8  # type: ignore[operator]
    assert next_delay(1, retry_after_s=10**9) == 86400


def test_parse_retry_after() -> None:
    now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("Fri, 01 Mar 2024 08:01:00 GMT", now) == 60
    assert parse_retry_after("Fri, 01 Mar 2024 07:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None

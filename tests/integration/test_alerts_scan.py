"""The stale scan on both stacks: which alerts open, which resolve, carrier health, learned limits."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.alerts import learning, repository
from services.alerts.health import CarrierLimits
from services.alerts.models import CARRIER, RESOLVED, SHIPMENT, Alert, CarrierHealth
from services.alerts.rules import RuleSpec, base_rules
from services.alerts.scan import ScanConfig, ScanResult, scan
from services.carriers.models import CarrierPollStat
from services.cli.runtime import Runtime
from services.timeline.models import Leg, Shipment, TrackingEventRow
from shared.auth import create_tenant
from shared.db import transaction
from shared.outbox import OutboxRecord
from shared.schema import TOPIC_ALERTS, AlertChange, decode

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
CONFIG = ScanConfig(base=base_rules(), learned_min_samples=5, carrier=CarrierLimits(min_active=50))


async def _tenant(rt: Runtime, name: str) -> uuid.UUID:
    async with transaction(rt.sessions) as s:
        return (await create_tenant(s, name)).id


async def _shipment(
    rt: Runtime,
    tenant: uuid.UUID,
    status: str,
    quiet: timedelta | None,
    *,
    substatus: str | None = None,
    carriers: tuple[str, ...] = ("china-post",),
    lane: tuple[str, str] = ("CN", "US"),
) -> uuid.UUID:
    """A shipment whose last event was ``quiet`` ago (None: no event yet, registered 5 days ago)."""
    async with transaction(rt.sessions) as s:
        shipment = Shipment(
            tenant_id=tenant,
            carrier=carriers[0],
            tracking_number=uuid.uuid4().hex[:13].upper(),
            origin_country=lane[0],
            destination_country=lane[1],
            status=status,
            substatus=substatus,
            module_status={},
            last_event_at=None if quiet is None else NOW - quiet,
            created_at=NOW - 5 * DAY,
            updated_at=NOW - 5 * DAY,
        )
        s.add(shipment)
        await s.flush()
        for i, carrier in enumerate(carriers):
            s.add(
                Leg(
                    shipment_id=shipment.id,
                    position=i,
                    carrier=carrier,
                    tracking_number=f"{shipment.tracking_number}{i}",
                )
            )
        return shipment.id


async def _scan(rt: Runtime, now: datetime = NOW, config: ScanConfig = CONFIG) -> ScanResult:
    async with transaction(rt.sessions) as s:
        return await scan(s, config, now, rt.settings.topic(TOPIC_ALERTS))


async def _alerts(rt: Runtime, **where: Any) -> list[Alert]:
    async with rt.sessions() as s:
        stmt = select(Alert).filter_by(**where).order_by(Alert.opened_at, Alert.rule_key)
        return list((await s.scalars(stmt)).all())


async def _changes(rt: Runtime) -> list[AlertChange]:
    async with rt.sessions() as s:
        rows = (await s.scalars(select(OutboxRecord).order_by(OutboxRecord.id))).all()
    out = []
    for row in rows:
        assert row.topic == rt.settings.topic(TOPIC_ALERTS)
        message = decode(row.value)
        assert isinstance(message, AlertChange)
        out.append(message)
    return out


async def test_quiet_shipments_open_one_alert_each_under_their_rule(stack: Runtime) -> None:
    t = await _tenant(stack, "acme")
    held = await _shipment(stack, t, "exception", 3 * DAY, substatus="import_customs_held")
    linehaul = await _shipment(stack, t, "in_transit", 6 * DAY, substatus="departed_origin_country")
    black_hole = await _shipment(
        stack,
        t,
        "in_transit",
        50 * HOUR,
        substatus="arrived_destination_country",
        carriers=("china-post", "usps"),
    )
    never = await _shipment(stack, t, "pending", None)
    await _shipment(stack, t, "in_transit", 20 * HOUR, substatus="departed_origin_country")
    await _shipment(stack, t, "out_for_delivery", 2 * HOUR)
    await _shipment(stack, t, "delivered", 30 * DAY)

    result = await _scan(stack)

    assert result.opened == 4
    opened = {a.shipment_id: a for a in await _alerts(stack, kind=SHIPMENT)}
    assert {sid: a.rule_key for sid, a in opened.items()} == {
        held: "import_customs_held",
        linehaul: "linehaul",
        black_hole: "handoff_black_hole",
        never: "no_carrier_data",
    }
    hole = opened[black_hole]
    assert (hole.carrier, hole.module, hole.lane, hole.tenant_id) == (
        "usps",
        "international",
        "CN-US",
        t,
    )
    assert (hole.threshold_s, hole.threshold_source, hole.severity) == (
        2 * 86400.0,
        "default",
        "critical",
    )
    assert hole.silent_since == NOW - 50 * HOUR and hole.state == "open"
    assert opened[never].last_event_at is None
    assert opened[never].silent_since == NOW - 5 * DAY
    async with stack.sessions() as s:  # each alert keeps its shipment's registered number
        rows = await s.execute(select(Shipment.id, Shipment.tracking_number))
        numbers = {sid: number for sid, number in rows}
    assert {a.shipment_id: a.tracking_number for a in opened.values()} == {
        sid: numbers[sid] for sid in opened
    }
    assert all(a.tracking_number for a in opened.values())
    changes = await _changes(stack)
    assert sorted((c.change, c.shipment_id) for c in changes) == sorted(
        ("opened", sid) for sid in opened
    )

    again = await _scan(stack, NOW + HOUR)
    assert again.opened == 0 and len(await _alerts(stack)) == 4


async def test_a_new_event_resolves_and_the_next_silence_opens_again(stack: Runtime) -> None:
    t = await _tenant(stack, "acme")
    sid = await _shipment(stack, t, "in_transit", 3 * DAY, substatus="import_customs_presented")
    await _scan(stack)
    [alert] = await _alerts(stack, shipment_id=sid)
    assert alert.rule_key == "import_customs"

    async with transaction(stack.sessions) as s:
        shipment = await s.get(Shipment, sid)
        assert shipment is not None
        shipment.last_event_at = NOW + HOUR
        shipment.substatus = "import_customs_released"
    result = await _scan(stack, NOW + 2 * HOUR)
    assert result.resolved == 1 and result.opened == 0
    [alert] = await _alerts(stack, shipment_id=sid)
    assert (alert.state, alert.resolved_reason) == (RESOLVED, "events resumed")
    assert alert.resolved_at == NOW + 2 * HOUR

    later = await _scan(stack, NOW + HOUR + 8 * DAY)  # quiet again, now under in_transit
    assert later.opened == 1
    alerts = await _alerts(stack, shipment_id=sid)
    assert [(a.rule_key, a.state) for a in alerts] == [
        ("import_customs", RESOLVED),
        ("in_transit", "open"),
    ]
    assert [c.change for c in await _changes(stack)] == ["opened", "resolved", "opened"]


async def test_a_manual_resolve_holds_while_the_parcel_stays_quiet(stack: Runtime) -> None:
    t = await _tenant(stack, "acme")
    sid = await _shipment(stack, t, "out_for_delivery", 30 * HOUR)
    await _scan(stack)
    [alert] = await _alerts(stack, shipment_id=sid)
    async with transaction(stack.sessions) as s:
        await repository.resolve(
            s, alert.id, tenant_id=t, by="ops@acme", now=NOW, topic=TOPIC_ALERTS
        )
    assert (await _scan(stack, NOW + HOUR)).opened == 0
    [alert] = await _alerts(stack, shipment_id=sid)
    assert (alert.state, alert.resolved_by) == (RESOLVED, "ops@acme")


async def test_the_most_specific_rule_wins_and_tenants_override_by_key(stack: Runtime) -> None:
    acme, other = await _tenant(stack, "acme"), await _tenant(stack, "other")
    lane_rule = RuleSpec(
        key="cn_us_customs",
        substatus="import_customs_presented",
        lane_origin="CN",
        lane_destination="US",
        max_silence_s=5 * 86400,
    )
    carrier_lane = RuleSpec(
        key="cn_us_usps_customs",
        substatus="import_customs_presented",
        carrier="usps",
        lane_origin="CN",
        lane_destination="US",
        max_silence_s=86400,
    )
    async with transaction(stack.sessions) as s:
        await repository.put_rules(s, CONFIG.base, None, [lane_rule, carrier_lane], now=NOW)
        strict = RuleSpec(key="out_for_delivery", status="out_for_delivery", max_silence_s=3600)
        await repository.put_rules(s, CONFIG.base, acme, [strict], now=NOW)
    kw: dict[str, Any] = {"substatus": "import_customs_presented"}
    on_lane = await _shipment(stack, acme, "in_transit", 3 * DAY, **kw)  # lane rule: 5 days
    by_usps = await _shipment(stack, acme, "in_transit", 30 * HOUR, carriers=("usps",), **kw)
    off_lane = await _shipment(stack, acme, "in_transit", 3 * DAY, lane=("CN", "GB"), **kw)
    acme_ofd = await _shipment(stack, acme, "out_for_delivery", 2 * HOUR)
    await _shipment(stack, other, "out_for_delivery", 2 * HOUR)  # default: 24 h

    await _scan(stack)

    alerts = {a.shipment_id: a for a in await _alerts(stack)}
    assert set(alerts) == {by_usps, off_lane, acme_ofd}
    assert on_lane not in alerts
    assert (alerts[by_usps].rule_key, alerts[by_usps].threshold_source) == (
        "cn_us_usps_customs",
        "operator",
    )
    assert alerts[off_lane].rule_key == "import_customs"
    assert (alerts[acme_ofd].threshold_s, alerts[acme_ofd].threshold_source) == (3600.0, "tenant")


async def test_an_open_carrier_alert_holds_back_its_parcels(stack: Runtime) -> None:
    t = await _tenant(stack, "acme")
    for _ in range(3):
        await _shipment(stack, t, "in_transit", 8 * DAY, carriers=("usps",))
    other = await _shipment(stack, t, "in_transit", 8 * DAY, carriers=("dhl",))
    async with transaction(stack.sessions) as s:
        for i in range(10):
            s.add(
                CarrierPollStat(
                    carrier="usps",
                    bucket_at=NOW - timedelta(seconds=10 * i),
                    polls=5,
                    errors=5 if i else 4,
                    latency_ms_sum=500,
                    latency_ms_max=300,
                    last_error="HTTP 503",
                    last_ok_at=None if i else NOW - HOUR,
                )
            )

    result = await _scan(stack)

    assert (result.carrier_opened, result.opened) == (1, 1)
    [carrier_alert] = await _alerts(stack, kind=CARRIER)
    assert (carrier_alert.carrier, carrier_alert.rule_key, carrier_alert.tenant_id) == (
        "usps",
        "carrier_errors",
        None,
    )
    assert carrier_alert.detail is not None and carrier_alert.detail["errors"] == 49
    [parcel] = await _alerts(stack, kind=SHIPMENT)
    assert parcel.shipment_id == other
    async with stack.sessions() as s:
        health = {h.carrier: h for h in (await s.scalars(select(CarrierHealth))).all()}
    assert health["usps"].polls == 50 and health["usps"].active_shipments == 3
    assert health["usps"].error_rate == 49 / 50 and health["usps"].latency_ms_avg == 100.0

    # The carrier answers again: the carrier alert resolves; its parcels get the recovery grace
    # to catch up, then the ones still quiet speak for themselves, one alert each.
    async with transaction(stack.sessions) as s:
        s.add(
            CarrierPollStat(
                carrier="usps",
                bucket_at=NOW + timedelta(minutes=20),
                polls=50,
                errors=0,
                latency_ms_sum=5000,
                latency_ms_max=200,
                last_ok_at=NOW + timedelta(minutes=20),
            )
        )
    later = await _scan(stack, NOW + timedelta(minutes=20))
    assert (later.carrier_resolved, later.opened) == (1, 0)
    [carrier_alert] = await _alerts(stack, kind=CARRIER)
    assert carrier_alert.state == RESOLVED
    grace = CONFIG.carrier.recovery_s
    after = await _scan(stack, NOW + timedelta(minutes=20, seconds=grace + 1))
    assert after.opened == 3


async def test_a_carrier_silent_on_all_its_parcels_is_one_carrier_alert(stack: Runtime) -> None:
    t = await _tenant(stack, "acme")
    for _ in range(4):
        await _shipment(
            stack, t, "in_transit", 30 * HOUR, substatus="departed_hub", carriers=("yanwen",)
        )
    limits = CarrierLimits(silent_s=86400, min_active=4)
    config = replace(CONFIG, carrier=limits)
    result = await _scan(stack, config=config)
    assert (result.carrier_opened, result.opened) == (1, 0)
    [alert] = await _alerts(stack, kind=CARRIER)
    assert (alert.carrier, alert.rule_key) == ("yanwen", "carrier_silent")

    async with transaction(stack.sessions) as s:
        shipment = (await s.scalars(select(Shipment).limit(1))).one()
        shipment.last_event_at = NOW + HOUR
    later = await _scan(stack, NOW + 2 * HOUR, config=config)
    assert later.carrier_resolved == 1


async def test_learned_p90_replaces_the_default_and_says_so(stack: Runtime) -> None:
    t = await _tenant(stack, "acme")
    # Ten past parcels on CN→US waited 1..10 hours after arriving before the next scan.
    for hours in range(1, 11):
        sid = await _shipment(stack, t, "delivered", 20 * DAY, carriers=("china-post",))
        async with transaction(stack.sessions) as s:
            leg = (await s.scalars(select(Leg).where(Leg.shipment_id == sid))).one()
            start = NOW - 20 * DAY
            for i, (status, sub, at) in enumerate(
                (
                    ("in_transit", "arrived_destination_country", start),
                    ("delivered", None, start + hours * HOUR),
                )
            ):
                s.add(
                    TrackingEventRow(
                        event_id=uuid.uuid4(),
                        carrier=leg.carrier,
                        tracking_number=leg.tracking_number,
                        occurred_at=at,
                        time_basis="carrier_utc",
                        status=status,
                        substatus=sub,
                        source="poll",
                        sequence=i,
                    )
                )
    async with transaction(stack.sessions) as s:
        groups = await learning.refresh(s, NOW, window_s=30 * 86400, min_samples=5)
    assert groups >= 1
    quick = await _shipment(
        stack, t, "in_transit", 30 * HOUR, substatus="arrived_destination_country"
    )
    fine = await _shipment(
        stack, t, "in_transit", 20 * HOUR, substatus="arrived_destination_country"
    )

    await _scan(stack)

    [alert] = await _alerts(stack, kind=SHIPMENT)
    assert alert.shipment_id == quick and fine != quick
    # p90 of 1..10 h is 9.1 h (PostgreSQL, interpolated) or 9 h (SQLite, nearest rank); the
    # rule's floor of one day is higher, so the floor is what applies.
    assert alert.threshold_s == 86400.0
    assert alert.threshold_source == "learned p90 over 10"


async def test_an_expired_snooze_opens_again(stack: Runtime) -> None:
    t = await _tenant(stack, "acme")
    sid = await _shipment(stack, t, "out_for_delivery", 30 * HOUR)
    await _scan(stack)
    [alert] = await _alerts(stack, shipment_id=sid)
    async with transaction(stack.sessions) as s:
        await repository.snooze(
            s, alert.id, tenant_id=t, until=NOW + HOUR, by="ops", now=NOW, topic=TOPIC_ALERTS
        )
    assert (await _scan(stack, NOW + timedelta(minutes=30))).reopened == 0
    assert (await _scan(stack, NOW + 2 * HOUR)).reopened == 1
    [alert] = await _alerts(stack, shipment_id=sid)
    assert alert.state == "open" and alert.snoozed_until is None

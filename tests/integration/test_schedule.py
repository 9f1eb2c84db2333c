"""The poll schedule on the real stack: per-carrier buckets and batches shared by every poller,
leases across a restart, re-detection after repeated "not found"."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from services.carriers.adapters import ADAPTERS, ParseError, ParseResult
from services.carriers.client import FetchResult
from services.carriers.consumer import carriers_consumer
from services.carriers.models import PollQuota, PollTarget
from services.carriers.poller import Poller
from services.cli.runtime import Runtime
from shared.bus import OutRecord
from shared.db import transaction, utcnow
from shared.schema import TOPIC_SHIPMENT_UPDATES, LegRef, ShipmentUpdate, encode
from shared.taxonomy import Status

NOT_FOUND = FetchResult(
    404,
    b'{"title": "No shipment with given tracking number found.", "status": 404}',
    "application/problem+json",
)


class NotFoundFetcher:
    """A carrier that knows none of our numbers, and counts what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def fetch(self, tracking_number: str) -> FetchResult:
        self.asked.append(tracking_number)
        return NOT_FOUND


async def add_targets(stack: Runtime, carrier: str, numbers: list[str], **fields: object) -> None:
    async with transaction(stack.sessions) as s:
        for number in numbers:
            s.add(
                PollTarget(carrier=carrier, tracking_number=number, next_poll_at=utcnow(), **fields)
            )


async def get(stack: Runtime, carrier: str, number: str) -> PollTarget | None:
    async with stack.sessions() as s:
        return await s.get(PollTarget, (carrier, number))


async def make_due(stack: Runtime, carrier: str, number: str) -> None:
    async with transaction(stack.sessions) as s:
        target = await s.get(PollTarget, (carrier, number))
        assert target is not None
        target.next_poll_at = utcnow()


async def test_batch_and_bucket_per_carrier_are_shared_by_pollers(stack: Runtime) -> None:
    settings = stack.settings.model_copy(
        update={"poll_carrier_batches": "dhl=2", "poll_rate_per_s": 0.001, "poll_burst": 3.0}
    )
    numbers = [f"{n:09d}{n % 7}" for n in range(100, 105)]
    await add_targets(stack, "dhl", numbers)
    dhl = NotFoundFetcher()
    first = Poller(settings, stack.bus, stack.sessions, {"dhl": dhl})
    assert await first.poll_once() == 2  # the carrier's batch
    assert await first.poll_once() == 1  # the last token of the burst
    # Another poller (or this one after a restart) shares the bucket and the leases.
    second = Poller(settings, stack.bus, stack.sessions, {"dhl": dhl})
    assert await second.poll_once() == 0
    assert sorted(dhl.asked) == sorted(set(dhl.asked)) and len(dhl.asked) == 3
    async with stack.sessions() as s:
        quota = await s.get(PollQuota, "dhl")
    assert quota is not None and quota.tokens < 1
    polled = [t for n in numbers if (t := await get(stack, "dhl", n)) and t.last_polled_at]
    assert len(polled) == 3 and all(t.not_found == 1 for t in polled)


async def test_a_claimed_number_waits_for_its_lease_after_a_crash(stack: Runtime) -> None:
    number = "1234567891"
    await add_targets(stack, "dhl", [number])
    dhl = NotFoundFetcher()
    poller = Poller(stack.settings, stack.bus, stack.sessions, {"dhl": dhl})
    async with transaction(stack.sessions) as s:  # a round that claimed it, then died
        claimed = await poller._claim(s, "dhl", utcnow())
    assert [t.tracking_number for t in claimed] == [number]
    restarted = Poller(stack.settings, stack.bus, stack.sessions, {"dhl": dhl})
    assert await restarted.poll_once() == 0 and dhl.asked == []
    target = await get(stack, "dhl", number)
    assert target is not None and target.active
    assert target.next_poll_at >= utcnow() + timedelta(seconds=stack.settings.poll_lease_s - 5)


class NothingFound:
    """Stands in for a FedEx adapter: every answer is "not found"."""

    carrier = "fedex"
    name = "FedEx (test stand-in)"

    def parse(self, payload: bytes, **_: object) -> ParseResult:
        return ParseResult(errors=[ParseError(None, "not_found", "unknown number")])


async def test_repeated_not_found_moves_a_detected_number_to_the_next_candidate(
    stack: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ADAPTERS, "fedex", NothingFound())
    settings = stack.settings.model_copy(update={"poll_redetect_after": 2})
    detected, named = "986578788855", "477179081230"  # 12 digits: FedEx Express, or DHL Paket
    await add_targets(stack, "dhl", [detected], detected=True)
    await add_targets(stack, "dhl", [named], detected=False)  # the merchant said DHL
    fetchers = {"dhl": NotFoundFetcher(), "fedex": NotFoundFetcher()}
    poller = Poller(settings, stack.bus, stack.sessions, fetchers)
    for _ in range(3):
        assert await poller.poll_once() >= 1
        for number in (detected, named):
            if (t := await get(stack, "dhl", number)) is not None and t.active:
                await make_due(stack, "dhl", number)

    old = await get(stack, "dhl", detected)
    assert old is not None and not old.active and old.redetected_to == "fedex"
    assert "fedex" in (old.last_error or "")
    new = await get(stack, "fedex", detected)
    assert new is not None and new.active and new.detected and new.redetected_from == "dhl"
    assert poller.stats.redetected == 1
    kept = await get(stack, "dhl", named)
    assert kept is not None and kept.active and kept.not_found == 3 and kept.redetected_to is None

    # The shipment still lists the DHL leg; its update does not bring the retired target back.
    update = ShipmentUpdate(
        shipment_id=uuid.uuid4(),
        tenant_id=None,
        status=Status.IN_TRANSIT,
        legs=[LegRef(carrier="dhl", tracking_number=detected, detected=True)],
        updated_at=utcnow(),
    )
    topic = stack.settings.topic(TOPIC_SHIPMENT_UPDATES)
    await stack.bus.publish(topic, [OutRecord(str(update.shipment_id), encode(update))])
    loop = carriers_consumer(stack.settings, stack.bus, stack.sessions, {"dhl", "fedex"})
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    for _ in range(400):
        if loop.stats.records:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert loop.stats.records == 1
    again = await get(stack, "dhl", detected)
    assert again is not None and not again.active and again.redetected_to == "fedex"

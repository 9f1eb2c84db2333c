"""Re-normalisation: re-parse stored raw payloads with today's adapters and publish the events again.

After a mapping fix (a carrier code mapped to the wrong status, a module rule, a time-zone rule),
history is corrected without asking the carriers again. The events carry ``renormalised=True``:
their ids are deterministic over what the carrier sent, so they match the stored ones, and the
timeline overwrites the stored events' mapped fields instead of dropping them as duplicates, then
re-derives the shipments. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.carriers import repository
from services.carriers.adapters import ADAPTERS
from services.carriers.models import RawPayloadRow
from shared.bus import Bus, OutRecord
from shared.errors import InvalidInput
from shared.schema import TOPIC_EVENTS, TrackingEvent, encode
from shared.settings import Settings
from shared.taxonomy import Source

log = logging.getLogger("throughline.renormalise")

PAGE = 500


@dataclass
class RenormaliseStats:
    payloads: int = 0
    events: int = 0
    errors: int = 0
    skipped: int = 0  # payloads of carriers without an adapter in this build


def reparse(row: RawPayloadRow) -> tuple[list[TrackingEvent], int]:
    """The events a stored payload yields today, flagged as renormalised; and its error count."""
    adapter = ADAPTERS[row.carrier]
    requested = row.tracking_numbers[0] if row.tracking_numbers else None
    try:
        source = Source(row.source)
    except ValueError:
        source = Source.POLL
    result = adapter.parse(
        row.body,
        requested=requested,
        raw_ref=str(row.id),
        source=source,
        http_status=row.http_status or 200,
    )
    events = [e.model_copy(update={"renormalised": True}) for e in result.events]
    return events, len(result.errors)


async def renormalise(
    settings: Settings,
    bus: Bus,
    sessions: async_sessionmaker[AsyncSession],
    *,
    carrier: str | None = None,
    since: datetime | None = None,
) -> RenormaliseStats:
    """Re-parse every stored payload (of ``carrier``, received at or after ``since``) in the order
    received and publish the events to ``tracking.events.v1``."""
    if carrier is not None and carrier not in ADAPTERS:
        raise InvalidInput(f"no adapter for {carrier!r}; have: {', '.join(sorted(ADAPTERS))}")
    if since is not None and since.utcoffset() is None:
        raise InvalidInput("--since needs a time zone, e.g. 2026-01-31T00:00:00Z")
    topic = settings.topic(TOPIC_EVENTS)
    stats = RenormaliseStats()
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with sessions() as session:
            rows = await repository.raw_payload_page(
                session, carrier=carrier, since=since, after=after, limit=PAGE
            )
        if not rows:
            return stats
        records: list[OutRecord] = []
        for row in rows:
            stats.payloads += 1
            if row.carrier not in ADAPTERS:
                stats.skipped += 1
                continue
            events, errors = reparse(row)
            stats.errors += errors
            stats.events += len(events)
            records.extend(OutRecord(f"{e.carrier}:{e.tracking_number}", encode(e)) for e in events)
        await bus.publish(topic, records)
        after = (rows[-1].received_at, rows[-1].id)
        log.info("renormalised", extra={"payloads": stats.payloads, "events": stats.events})

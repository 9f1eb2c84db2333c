"""The ``alerts-scanner`` role: the stale scan every ``alert_scan_interval_s``, learned thresholds
every ``alert_learn_interval_s``, and what the scan wrote to the outbox published after commit.

Several scanners may run: on PostgreSQL a transaction-scoped advisory lock lets one scan at a time
(the others skip that round), so two scans never race on the same alerts.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts import learning
from services.alerts.health import CarrierLimits
from services.alerts.rules import base_rules
from services.alerts.scan import ScanConfig, ScanResult, scan
from shared.db import transaction, utcnow
from shared.outbox import OutboxRelay
from shared.schema import TOPIC_ALERTS
from shared.settings import Settings

log = logging.getLogger("throughline.alerts")

_LOCK_KEY = 0x7A1E575CA  # pg_try_advisory_xact_lock key of the alerts scan


def scan_config(settings: Settings) -> ScanConfig:
    """The scan's rules and limits from settings (reads the rules file: errors surface at start)."""
    return ScanConfig(
        base=base_rules(settings.alert_rules_file),
        learned_min_samples=settings.alert_learned_min_samples,
        carrier=CarrierLimits(
            window_s=settings.alert_carrier_window_s,
            min_polls=settings.alert_carrier_min_polls,
            error_rate=settings.alert_carrier_error_rate,
            silent_s=settings.alert_carrier_silent_s,
            min_active=settings.alert_carrier_min_active,
            recovery_s=settings.alert_carrier_recovery_s,
        ),
    )


async def _locked(session: AsyncSession) -> bool:
    if session.bind.dialect.name != "postgresql":
        return True  # SQLite: one writer at a time anyway
    got = await session.scalar(text(f"SELECT pg_try_advisory_xact_lock({_LOCK_KEY})"))
    return bool(got)


class Scanner:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        relay: OutboxRelay,
    ):
        self._settings = settings
        self._sessions = sessions
        self._relay = relay
        self._config = scan_config(settings)
        self._topic = settings.topic(TOPIC_ALERTS)
        self._learned_at: datetime | None = None
        self.last: ScanResult | None = None

    async def scan_once(self, now: datetime | None = None) -> ScanResult | None:
        """One scan (and a learning pass when due); None when another scanner holds the lock."""
        now = now or utcnow()
        async with transaction(self._sessions) as session:
            if not await _locked(session):
                return None
            if self._learning_due(now):
                n = await learning.refresh(
                    session,
                    now,
                    window_s=self._settings.alert_learn_window_s,
                    min_samples=self._settings.alert_learned_min_samples,
                )
                log.info("learned thresholds refreshed", extra={"groups": n})
                self._learned_at = now
            result = await scan(session, self._config, now, self._topic)
        await self._relay.flush()
        self.last = result
        if result.opened or result.resolved or result.carrier_opened or result.carrier_resolved:
            log.info("alerts scan", extra=vars(result))
        return result

    def _learning_due(self, now: datetime) -> bool:
        if self._learned_at is None:
            return True
        return (now - self._learned_at).total_seconds() >= self._settings.alert_learn_interval_s

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.scan_once()
            except Exception as exc:  # noqa: BLE001 - loop boundary: the next round retries
                log.exception("alerts scan failed", extra={"error": repr(exc)})
            try:
                await asyncio.wait_for(stop.wait(), self._settings.alert_scan_interval_s)
            except TimeoutError:
                pass

"""The sender's dispatcher: oldest ready job first, within the global and per-endpoint caps."""

from __future__ import annotations

import uuid

from services.webhooks.repository import Claimed
from services.webhooks.sender import Sender
from shared.db import create_engine, session_factory
from shared.settings import Settings

A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


def _sender(max_in_flight: int, per_endpoint: int) -> tuple[Sender, list[int]]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        webhook_max_in_flight=max_in_flight,
        webhook_endpoint_concurrency=per_endpoint,
    )
    # SQLite: the generic claim path; nothing here connects to it.
    sender = Sender(settings, session_factory(create_engine("sqlite+aiosqlite:///:memory:")))
    started: list[int] = []

    def start(job: Claimed) -> None:  # what _start does, minus the request
        sender._in_flight[job.endpoint_id] = sender._in_flight.get(job.endpoint_id, 0) + 1
        started.append(job.delivery_id)

    sender._start = start  # type: ignore[method-assign]
    return sender, started


def _job(delivery_id: int, endpoint: uuid.UUID) -> Claimed:
    return Claimed(delivery_id, endpoint, uuid.uuid4(), "https://example.com/h", ["s"], b"{}")


def _finish(sender: Sender, delivery_id: int, endpoint: uuid.UUID) -> None:
    """What _send's finally does once the request is over."""
    for counts in (sender._in_flight, sender._held):
        counts[endpoint] -= 1
        if not counts[endpoint]:
            del counts[endpoint]
    sender._became_free(endpoint)
    sender._dispatch()


def test_oldest_first_within_both_caps() -> None:
    sender, started = _sender(max_in_flight=3, per_endpoint=2)
    jobs = [_job(1, A), _job(2, A), _job(3, A), _job(4, A), _job(5, B), _job(6, A), _job(7, C)]
    sender._enqueue(jobs)
    sender._dispatch()
    assert started == [1, 2, 5]  # A is at its cap of 2, so B's older job goes before A's third
    _finish(sender, 5, B)  # a global slot frees: the oldest job that may start is C's (A at cap)
    assert started == [1, 2, 5, 7]
    _finish(sender, 1, A)
    assert started == [1, 2, 5, 7, 3]
    _finish(sender, 7, C)
    _finish(sender, 2, A)
    assert started == [1, 2, 5, 7, 3, 4]  # A back to 2 in flight: 6 waits for a slot of A's
    assert sender.in_flight == 2 and sender._held == {A: 3}


def test_a_gone_endpoint_drops_its_ready_jobs() -> None:
    sender, started = _sender(max_in_flight=1, per_endpoint=1)
    sender._enqueue([_job(1, A), _job(2, A), _job(3, B)])
    sender._dispatch()
    assert started == [1]
    sender._drop_ready(A)  # A answered 410: its other ready job is not sent
    _finish(sender, 1, A)
    assert started == [1, 3]
    assert sender._held == {B: 1} and A in sender._gone

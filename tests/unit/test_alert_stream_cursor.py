"""The alert stream's event ids: exact round trips, the same order as the database's, clear errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.alerts.stream import Change, Cursor, frame
from shared.errors import InvalidInput

AT = datetime(2024, 3, 1, 8, 0, 0, 123457, tzinfo=UTC)


def test_an_event_id_round_trips_to_the_microsecond() -> None:
    ident = str(uuid.uuid4())
    for at in (
        AT,
        AT + timedelta(microseconds=1),
        datetime(2038, 1, 19, 3, 14, 8, 999999, tzinfo=UTC),
    ):
        assert Cursor.decode(Cursor(at, ident).encode()) == Cursor(at, ident)


def test_event_ids_sort_like_updated_at_then_id() -> None:
    low, high = sorted(str(uuid.uuid4()) for _ in range(2))
    ordered = [Cursor(AT, low), Cursor(AT, high), Cursor(AT + timedelta(microseconds=1), low)]
    assert sorted(reversed(ordered)) == ordered
    assert uuid.UUID(low).bytes < uuid.UUID(high).bytes  # as PostgreSQL and SQLite order them


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "garbage",
        "123",
        "-" + str(uuid.uuid4()),
        "12x-" + str(uuid.uuid4()),
        "1-not-a-uuid",
        "9" * 19 + "-" + str(uuid.uuid4()),
    ],
)
def test_a_foreign_event_id_is_refused_clearly(raw: str) -> None:
    with pytest.raises(InvalidInput, match="Last-Event-ID"):
        Cursor.decode(raw)


def test_a_frame_is_one_sse_event() -> None:
    ident = str(uuid.uuid4())
    body = frame(Change(Cursor(AT, ident), b'{"id": 1}'))
    assert body == f'id: {Cursor(AT, ident).encode()}\nevent: alert\ndata: {{"id": 1}}\n\n'.encode()

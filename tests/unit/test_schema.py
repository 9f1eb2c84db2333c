import uuid
from datetime import UTC, datetime

import pytest

from shared.errors import InvalidInput
from shared.schema import TrackingEvent, decode, encode, make_event_id
from shared.taxonomy import Status, TimeBasis


def _event(**overrides: object) -> TrackingEvent:
    fields: dict[str, object] = {
        "event_id": make_event_id("dhl", "1234567891", "transit", "2024-01-01T10:00:00", "Leipzig"),
        "carrier": "dhl",
        "tracking_number": "1234567891",
        "occurred_at_local": "2024-01-01T10:00:00",
        "time_basis": TimeBasis.UNKNOWN,
        "status": Status.IN_TRANSIT,
    }
    fields.update(overrides)
    return TrackingEvent.model_validate(fields)


def test_event_id_is_deterministic() -> None:
    a = make_event_id("dhl", "123", "PU", "2024-01-01T10:00:00", "Leipzig")
    assert a == make_event_id("dhl", "123", "PU", "2024-01-01T10:00:00", "Leipzig")
    assert a.version == 5


@pytest.mark.parametrize("field", ["carrier", "number", "code", "ts", "loc"])
def test_event_id_changes_with_every_part(field: str) -> None:
    parts = {
        "carrier": "dhl",
        "number": "123",
        "code": "PU",
        "ts": "2024-01-01T10:00:00",
        "loc": "Leipzig",
    }
    base = make_event_id(*parts.values())
    parts[field] = parts[field] + "x"
    assert make_event_id(*parts.values()) != base


def test_leading_zero_codes_do_not_collide() -> None:
    assert make_event_id("c", "1", "0174", "t", None) != make_event_id("c", "1", "174", "t", None)


def test_round_trip_through_the_one_adapter() -> None:
    event = _event(
        occurred_at=datetime(2024, 1, 1, 9, 0, tzinfo=UTC), time_basis="location_timezone"
    )
    assert decode(encode(event)) == event


@pytest.mark.parametrize(
    "value", [b"not json", b"{}", b'{"kind":"tracking_event"}', b"[1,2]", b'{"kind":"martian"}']
)
def test_decode_refuses_garbage_with_a_reason(value: bytes) -> None:
    with pytest.raises(InvalidInput) as info:
        decode(value)
    assert str(info.value)


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError):
        _event(occurred_at=datetime(2024, 1, 1, 9, 0))


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError):
        _event(status="teleported")


def test_country_must_be_iso2() -> None:
    with pytest.raises(ValueError):
        _event(location={"country": "Germany"})
    assert _event(location={"country": "de"}).location.country == "DE"  # type: ignore[union-attr]


def test_event_id_is_a_uuid() -> None:
    assert isinstance(_event().event_id, uuid.UUID)

"""The tracking page's view: times, statuses, customs and fields the public view may or may not have."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.timeline.page import templates
from services.timeline.page_view import Label, customs_view, moment, parcel_view
from services.timeline.schemas import (
    CustomsOut,
    ModuleTimeline,
    PublicEvent,
    PublicLeg,
    TrackingOut,
)

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def _event(module_status: str = "in_transit", description: str = "Arrived") -> PublicEvent:
    return PublicEvent(
        occurred_at=datetime(2024, 3, 2, 14, 0, tzinfo=UTC),
        occurred_at_local="2024-03-02T09:00:00",
        utc_offset="-05:00",
        time_basis="carrier_offset",
        status=module_status,
        substatus="arrived_destination_country",
        carrier="dhl",
        tracking_number="1234567891",
        carrier_code="AF",
        description=description,
        location=None,
    )


def _modules(events: list[PublicEvent]) -> list[ModuleTimeline]:
    return [
        ModuleTimeline(module="origin", status=None, events=[]),
        ModuleTimeline(module="international", status="in_transit", events=events),
        ModuleTimeline(module="destination", status=None, events=[]),
    ]


def _render(tracking: TrackingOut) -> str:
    return (
        templates()
        .get_template("tracking.html")
        .render(
            kind="parcel",
            parcel=parcel_view(tracking),
            search_url="/t",
            query="",
            error=None,
            retry_after=None,
            api_url="/v1/tracking/1234567891",
        )
    )


def test_a_view_without_customs_next_step_or_leg_state_still_renders() -> None:
    # model_construct leaves the newer fields unset, as an older TrackingOut would.
    fields: dict[str, Any] = {
        "tracking_number": "1234567891",
        "status": "in_transit",
        "substatus": None,
        "last_event_at": None,
        "legs": [
            PublicLeg.model_construct(position=0, carrier="dhl", tracking_number="1234567891")
        ],
        "modules": _modules([_event()]),
    }
    tracking = TrackingOut.model_construct(**fields)
    view = parcel_view(tracking)
    assert view.customs == [] and view.next_step is None
    assert view.legs[0].status is None and view.legs[0].where is None
    # Origin was passed without a scan; destination has not started.
    assert [m.status.text for m in view.modules] == [
        "No scans reported",
        "In transit",
        "Not started yet",
    ]
    html = _render(tracking)
    assert "What happens next" not in html and "Customs</h2>" not in html


def test_customs_next_step_and_leg_state_are_shown_and_escaped() -> None:
    tracking = TrackingOut(
        tracking_number="1234567891",
        status="in_transit",
        substatus="import_customs_held",
        last_event_at=None,
        next_step=f"Held by import customs {HOSTILE}",
        customs=CustomsOut(export="released", import_="held", duties="payable"),
        legs=[
            PublicLeg(
                position=0,
                carrier="dhl",
                tracking_number="1234567891",
                status="in_transit",
                module="international",
            )
        ],
        modules=_modules([_event(description=HOSTILE)]),
    )
    view = parcel_view(tracking)
    assert view.customs == [
        ("Export customs", Label("Cleared", "done", "✓")),
        ("Import customs", Label("Held", "warn", "!")),
        ("Import duties", Label("To be paid", "warn", "!")),
    ]
    assert view.legs[0].where == "International" and view.legs[0].status is not None
    html = _render(tracking)
    assert "What happens next" in html and "Held by import customs &lt;script&gt;" in html
    assert "<script" not in html and "<img" not in html


def test_customs_of_unknown_shapes_do_not_break_the_page() -> None:
    assert customs_view(None) == []
    assert customs_view(CustomsOut()) == []
    assert customs_view("held") == [("Customs", Label("Held", "warn", "!"))]
    assert customs_view({"export": "released", "broker": "ACME"})[1] == (
        "Broker",
        Label("ACME", "idle", "•"),
    )


def test_times_say_local_and_add_utc_only_when_known() -> None:
    stated = moment(
        "2024-03-01T12:00:00", "+08:00", datetime(2024, 3, 1, 4, tzinfo=UTC), "carrier_offset"
    )
    assert (stated.local_text, stated.local_attr) == (
        "Fri 1 Mar 2024, 12:00",
        "2024-03-01T12:00:00+08:00",
    )
    assert stated.note == "local time (UTC+08:00)"
    assert (stated.utc_text, stated.utc_attr) == ("04:00 UTC", "2024-03-01T04:00:00Z")
    unknown = moment("2024-03-02T15:30:00", None, None, "unknown")
    assert unknown.note == "local time" and unknown.utc_text is None
    assert unknown.local_attr == "2024-03-02T15:30:00"
    next_day = moment(
        "2024-03-02T20:00:00", None, datetime(2024, 3, 3, 1, tzinfo=UTC), "carrier_utc"
    )
    assert next_day.utc_text == "Sun 3 Mar 2024, 01:00 UTC"
    only_utc = moment(None, None, datetime(2024, 3, 3, 1, tzinfo=UTC), "carrier_utc")
    assert (only_utc.local_text, only_utc.note) == ("Sun 3 Mar 2024, 01:00", "UTC")
    garbled = moment("yesterday-ish", "bogus", None, "unknown")
    assert (garbled.local_text, garbled.local_attr, garbled.note) == (
        "yesterday-ish",
        None,
        "local time",
    )

"""One small, parseable push per aggregator in its real wire format, for demos, docs and smoke tests.

``sample_payload(carrier, number)`` returns the exact bytes to sign and POST to
``/v1/carrier-webhooks/{carrier}``; ``SCHEMES[carrier].signed_headers(body, secret)`` gives the
signature header. Times are fixed: a sample is data, it reads no clock.
"""

from __future__ import annotations

import json
from typing import Any

from shared.errors import NotFound


def _track17(number: str) -> dict[str, Any]:
    def scan(
        iso: str, utc: str, text: str, where: str, country: str, sub: str, stage: str
    ) -> dict[str, Any]:
        return {
            "time_iso": iso,
            "time_utc": utc,
            "description": text,
            "location": where,
            "stage": stage,
            "sub_status": sub,
            "address": {
                "country": country,
                "state": None,
                "city": where,
                "street": None,
                "postal_code": None,
                "coordinates": {"longitude": None, "latitude": None},
            },
        }

    return {
        "event": "TRACKING_UPDATED",
        "data": {
            "number": number,
            "carrier": 3011,
            "param": None,
            "tag": None,
            "track_info": {
                "shipping_info": {
                    "shipper_address": {"country": "CN"},
                    "recipient_address": {"country": "US"},
                },
                "latest_status": {
                    "status": "InTransit",
                    "sub_status": "InTransit_Arrival",
                    "sub_status_descr": None,
                },
                "tracking": {
                    "providers_hash": 1,
                    "providers": [
                        {
                            "provider": {
                                "key": 3011,
                                "name": "China Post",
                                "alias": "China Post",
                                "country": "CN",
                            },
                            "service_type": "ePacket",
                            "latest_sync_status": "Success",
                            "events": [
                                scan(
                                    "2025-03-08T06:10:00-05:00",
                                    "2025-03-08T11:10:00Z",
                                    "Arrival at inward office of exchange",
                                    "NEW YORK",
                                    "US",
                                    "InTransit_Arrival",
                                    "Arrival",
                                ),
                                scan(
                                    "2025-03-04T21:40:00+08:00",
                                    "2025-03-04T13:40:00Z",
                                    "Departure from outward office of exchange",
                                    "GUANGZHOU",
                                    "CN",
                                    "InTransit_Departure",
                                    "Departure",
                                ),
                                scan(
                                    "2025-03-03T10:02:00+08:00",
                                    "2025-03-03T02:02:00Z",
                                    "Posting/Collection",
                                    "SHENZHEN",
                                    "CN",
                                    "InTransit_PickedUp",
                                    "PickedUp",
                                ),
                            ],
                        }
                    ],
                },
            },
        },
    }


def _aftership(number: str) -> dict[str, Any]:
    def checkpoint(
        when: str, text: str, city: str, iso3: str, tag: str, subtag: str, raw_tag: str
    ) -> dict[str, Any]:
        return {
            "slug": "usps",
            "checkpoint_time": when,
            "created_at": "2025-03-10T00:00:00+00:00",
            "message": text,
            "location": None,
            "city": city,
            "state": None,
            "zip": None,
            "country_iso3": iso3,
            "tag": tag,
            "subtag": subtag,
            "raw_tag": raw_tag,
        }

    return {
        "ts": 1741600000,
        "event": "tracking_update",
        "event_id": "0b6f8f0e-6a37-4f5e-9a4e-3c2d1e0f9a8b",
        "is_tracking_first_tag": False,
        "msg": {
            "id": "f3b6a6c1d2e34f5a8b9c0d1e2f3a4b5c",
            "tracking_number": number,
            "slug": "usps",
            "tag": "OutForDelivery",
            "origin_country_iso3": "USA",
            "destination_country_iso3": "USA",
            "checkpoints": [
                checkpoint(
                    "2025-03-08T09:12:00-06:00",
                    "Accepted at USPS Origin Facility",
                    "DALLAS",
                    "USA",
                    "InTransit",
                    "InTransit_002",
                    "OA",
                ),
                checkpoint(
                    "2025-03-09T23:40:00",
                    "Arrived at USPS Regional Facility",
                    "CHICAGO",
                    "USA",
                    "InTransit",
                    "InTransit_003",
                    "10",
                ),
                checkpoint(
                    "2025-03-10T07:55:00-06:00",
                    "Out for Delivery",
                    "EVANSTON",
                    "USA",
                    "OutForDelivery",
                    "OutForDelivery_001",
                    "OF",
                ),
            ],
        },
    }


def _easypost(number: str) -> dict[str, Any]:
    def detail(
        when: str, text: str, status: str, detail: str, code: str, city: str
    ) -> dict[str, Any]:
        return {
            "object": "TrackingDetail",
            "message": text,
            "description": "",
            "status": status,
            "status_detail": detail,
            "datetime": when,
            "source": "USPS",
            "carrier_code": code,
            "tracking_location": {
                "object": "TrackingLocation",
                "city": city,
                "state": "CA",
                "country": "US",
                "zip": None,
            },
        }

    return {
        "object": "Event",
        "id": "evt_5c7a4f1e2b3d4c5e",
        "mode": "test",
        "description": "tracker.updated",
        "created_at": "2025-03-10T16:00:00Z",
        "previous_attributes": {"status": "in_transit"},
        "result": {
            "id": "trk_8f9e0d1c2b3a",
            "object": "Tracker",
            "mode": "test",
            "tracking_code": number,
            "status": "delivered",
            "carrier": "USPS",
            "tracking_details": [
                detail(
                    "2025-03-08T17:02:00Z",
                    "Shipping Label Created",
                    "pre_transit",
                    "label_created",
                    "GX",
                    "OAKLAND",
                ),
                detail(
                    "2025-03-09T02:15:00Z",
                    "Arrived at USPS Facility",
                    "in_transit",
                    "arrived_at_facility",
                    "10",
                    "SAN FRANCISCO",
                ),
                detail(
                    "2025-03-10T15:45:00Z",
                    "Delivered",
                    "delivered",
                    "arrived_at_destination",
                    "01",
                    "SAN JOSE",
                ),
            ],
        },
    }


_BUILDERS = {"17track": _track17, "aftership": _aftership, "easypost": _easypost}
DEFAULT_NUMBERS = {
    "17track": "LX123456785CN",
    "aftership": "9400111899223817012345",
    "easypost": "EZ4000000004",
}


def sample_payload(carrier: str, tracking_number: str | None = None) -> bytes:
    """A push body for ``carrier`` about ``tracking_number`` (a valid-looking default if None)."""
    build = _BUILDERS.get(carrier)
    if build is None:
        raise NotFound(f"no sample for carrier {carrier!r}")
    number = tracking_number or DEFAULT_NUMBERS[carrier]
    return json.dumps(build(number), ensure_ascii=False).encode("utf-8")

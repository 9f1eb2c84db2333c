"""Standard Webhooks signatures: published vectors, the independent reference library, rotation."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.webhooks import signing
from shared.errors import InvalidInput

# The example of the Standard Webhooks specification and its reference libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_spec_vector() -> None:
    assert signing.sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_our_vector_is_the_reference_librarys() -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    body = b'{"type":"shipment.delivered","timestamp":"2024-03-01T08:00:00Z","data":{}}'
    ts = 1709280000
    reference = Webhook(secret).sign("evt-1", datetime.fromtimestamp(ts, UTC), body.decode())
    assert signing.sign(secret, "evt-1", ts, body) == reference
    # the same as `openssl dgst -sha256 -mac HMAC` over "evt-1.1709280000.<body>"
    assert reference == "v1,PwKlxu++OrD/uV6OYHrs4+8wJ1r9LfOt8jOew3DFWRo="


def test_reference_library_verifies_our_headers() -> None:
    secret = signing.generate_secret()
    body = b'{"type":"shipment.status_changed","data":{"status":"in_transit"}}'
    headers = signing.headers([secret], "evt-42", body)
    assert Webhook(secret).verify(body, headers)["data"]["status"] == "in_transit"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_secret()).verify(body, headers)


def test_rotation_sends_both_signatures_and_each_secret_verifies() -> None:
    old, new = signing.generate_secret(), signing.generate_secret()
    body = b"{}"
    headers = signing.headers([new, old], "evt-7", body)
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, headers)
        assert signing.verify(secret, headers, body)


def test_verify_rejects_stale_or_missing_headers() -> None:
    secret = signing.generate_secret()
    body = b"{}"
    old = signing.headers([secret], "evt-1", body, timestamp=int(time.time()) - 301)
    assert not signing.verify(secret, old, body)
    assert signing.verify(secret, old, body, tolerance_s=400)
    assert not signing.verify(secret, {"webhook-id": "x"}, body)


def test_generated_secrets_are_standard() -> None:
    secret = signing.generate_secret()
    assert secret.startswith("whsec_") and len(signing.secret_bytes(secret)) == 32
    assert signing.generate_secret() != secret


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"),
        ("whsec_not*base64", "base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "24 to 64"),
    ],
)
def test_bad_secrets_say_what_is_wrong(secret: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        signing.secret_bytes(secret)

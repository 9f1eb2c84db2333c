"""The one exception tree of Throughline.

- ``InvalidInput``: the input cannot be used as it is. A record goes to its DLQ with the message;
  an API request gets a 4xx with the message.
- ``RetryableError``: infrastructure is unavailable (database, broker, carrier API). Retried in place;
  a loop that keeps failing exits non-zero so a supervisor restarts it.
- ``NotFound`` / ``Conflict``: rendered by one FastAPI handler as 404 / 409.
"""

from __future__ import annotations


class ThroughlineError(Exception):
    """Base of every error Throughline raises on purpose."""


class InvalidInput(ThroughlineError):
    """Input that cannot be used as it is; the message says what to fix."""


class PayloadTooLarge(InvalidInput):
    """A body over the configured size limit."""


class RetryableError(ThroughlineError):
    """A transient infrastructure failure; the same work may succeed later."""


class NotFound(ThroughlineError):
    """The object does not exist, or belongs to another tenant."""


class Conflict(ThroughlineError):
    """The request conflicts with the current state."""


class Unauthorized(ThroughlineError):
    """Missing or invalid credentials."""


class Forbidden(ThroughlineError):
    """Valid credentials without the scope the operation needs."""


__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "RetryableError",
    "ThroughlineError",
    "Unauthorized",
]

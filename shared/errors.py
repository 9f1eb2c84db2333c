"""The one exception tree of Throughline.

- ``InvalidInput``: the input cannot be used as it is. A record goes to its DLQ with the message;
  an API request gets a 4xx with the message.
- ``RetryableError``: infrastructure is unavailable (database, broker, carrier API). Retried in place;
  a loop that keeps failing exits non-zero so a supervisor restarts it.
- ``NotFound`` / ``Conflict``: rendered by one FastAPI handler as 404 / 409.
- ``RateLimited``: rendered as 429 with ``Retry-After``.
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


class RateLimited(ThroughlineError):
    """Too many requests; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: int, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.headers = headers or {}


__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RetryableError",
    "ThroughlineError",
    "Unauthorized",
]

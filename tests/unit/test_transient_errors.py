"""Which failures a consumer retries in place (never dead-letters): a database that is away,
starting up or busy is transient; a record the database refuses is not."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.bus.runner import is_transient


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
        asyncpg.exceptions.CrashShutdownError("terminating connection due to crash"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients already"),
        asyncpg.exceptions.ConnectionFailureError("connection failure"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        ConnectionRefusedError(111, "Connect call failed"),
    ],
)
def test_an_absent_or_busy_database_is_transient(error: Exception) -> None:
    assert is_transient(error)
    wrapped = DBAPIError("select 1", None, error, connection_invalidated=False)
    assert is_transient(wrapped)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.StringDataRightTruncationError("value too long"),
        asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax"),
        ValueError("bad record"),
    ],
)
def test_a_refused_record_is_not_transient(error: Exception) -> None:
    assert not is_transient(error)
    assert not is_transient(IntegrityError("insert", None, error))

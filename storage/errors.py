"""Which failures mean "the database did not take it", and which mean "it is away"."""

from __future__ import annotations

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    NotSupportedError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

_REFUSED_THE_DATA = (IntegrityError, DataError, ProgrammingError, NotSupportedError)


def database_failed(exc: BaseException) -> bool:
    """The database refused or never saw the work, whatever the reason: a request
    that failed so must not be acknowledged (WeChat retries it)."""
    return isinstance(exc, DBAPIError | PoolTimeout | OSError)


def database_unavailable(exc: BaseException) -> bool:
    """The database is away (a lost or refused connection, a server shutting down, an
    exhausted pool) rather than refusing this work: it says nothing about the message,
    and a retry will likely succeed. A refusal of the data itself (too long a value,
    a constraint) would fail every retry the same way, so it is not one of these."""
    if isinstance(exc, PoolTimeout | ConnectionError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or not isinstance(exc, _REFUSED_THE_DATA)
    return False

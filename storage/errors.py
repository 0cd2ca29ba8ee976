"""Telling "the database is unreachable now" from "this code is wrong"."""

from __future__ import annotations

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

_CODE_FAULTS = (IntegrityError, DataError, ProgrammingError, NotSupportedError)


def database_unavailable(exc: BaseException) -> bool:
    """True for failures that say nothing about the message being handled: a lost or
    refused connection, a server shutting down, an exhausted pool. Such a message
    must not be acknowledged; WeChat's retry will find the database back."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | OSError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or not isinstance(exc, _CODE_FAULTS)
    return False

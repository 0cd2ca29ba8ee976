"""Which failures mean "the database did not take it"."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout


def database_failed(exc: BaseException) -> bool:
    """True when the database refused or never saw the work: a lost or refused
    connection, a server shutting down, an exhausted pool, a schema not migrated, a
    constraint another attempt won. Whatever the cause, the message's effects are not
    saved, so it must not be acknowledged: WeChat's retry runs it again (and finds the
    database back, or the other attempt's row)."""
    return isinstance(exc, DBAPIError | PoolTimeout | OSError)

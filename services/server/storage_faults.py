"""What a fault of the database means to a client: 503 with ``Retry-After``.

A locked, full, read-only or unreachable database is a passing condition of
the lab's storage, not a bug of the request: the client should come back
later, and a tenant's outbox or the optimizer daemon does exactly that. So
every such fault answers 503 with ``Retry-After`` and a message saying which
fault it is, never a bare 500. Anything else (an integrity error is a bug)
keeps its 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, InternalError, OperationalError

from .db.engine import DatabaseBusy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StorageFault:
    """A database fault as the client is told it."""

    kind: str
    detail: str
    retry_after: int


# (fragment of the driver's message, kind, what the client is told, seconds to wait)
_KNOWN: tuple[tuple[str, str, str, int], ...] = (
    ("database is locked", "locked", "the database is locked by another writer", 5),
    ("database table is locked", "locked", "the database is locked by another writer", 5),
    ("lock timeout", "locked", "the database is locked by another writer", 5),
    ("could not obtain lock", "locked", "the database is locked by another writer", 5),
    ("database or disk is full", "full", "the database's disk is full", 60),
    ("no space left on device", "full", "the database's disk is full", 60),
    ("could not extend file", "full", "the database's disk is full", 60),
    ("readonly database", "read-only", "the database is read-only", 60),
    ("read-only transaction", "read-only", "the database is read-only", 60),
    ("read only", "read-only", "the database is read-only", 60),
    ("disk i/o error", "io", "the database's disk failed a read or write", 30),
    ("unable to open database", "unreachable", "the database cannot be opened", 30),
    ("connection refused", "unreachable", "the database server cannot be reached", 10),
    ("could not connect", "unreachable", "the database server cannot be reached", 10),
    ("server closed the connection", "unreachable", "the database server cannot be reached", 10),
    ("terminating connection", "unreachable", "the database server cannot be reached", 10),
    ("the database system is starting up", "unreachable", "the database server is starting", 10),
    ("the database system is shutting down", "unreachable", "the database server is shutting down", 10),
)


def classify(exc: BaseException) -> StorageFault | None:
    """The storage fault behind ``exc``, or None when it is not one.

    Args:
        exc: an exception raised while a route used the database.

    Returns:
        The fault with its client message and back-off, or None for errors that
        are not the storage's (they stay 500s).
    """
    if isinstance(exc, DatabaseBusy):
        return StorageFault("locked", "the database is locked by another writer", 5)
    if not isinstance(exc, OperationalError | InternalError):
        return None
    text = str(getattr(exc, "orig", exc)).lower()
    for fragment, kind, detail, retry in _KNOWN:
        if fragment in text:
            return StorageFault(kind, detail, retry)
    if isinstance(exc, OperationalError) and isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return StorageFault("unreachable", "the database connection was lost", 10)
    if isinstance(exc, OperationalError):
        # an operational error is the database's by definition (DB-API 2.0): unknown ones are still not the request's
        return StorageFault("unavailable", "the database cannot serve this now", 10)
    return None

"""Login throttling: too many failed logins of one user name, or from one client address, get 429.

Failures are rows of the ``login_failure`` table, so every replica sharing the
database counts the same attempts. A key (``user:NAME``, ``address:HOST``) is
throttled while it has at least its limit of failures in the last window; it
may try again once the oldest of those leaves the window, which is what
``Retry-After`` says. Unknown user names are counted like known ones, so the
answers say nothing about which names exist.

An attempt is written down before its password is checked and taken back if
it succeeds: attempts sent in parallel cannot slip past the limit while their
passwords are being checked. A success also clears its user name's failures
(not its address's, or an account of one's own would reset the count while
guessing others').
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, text
from sqlmodel import Session, col

from .db.engine import Database
from .db.tables import LoginFailure
from .errors import ServiceError

#: Longer user names or addresses are counted under their SHA-256 (the column holds 200 characters).
LONGEST_KEY = 150


class TooManyAttempts(ServiceError):
    """Too many failed logins: try again in ``retry_after`` seconds (429)."""

    status_code = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def failure_key(kind: str, value: str) -> str:
    if len(value) > LONGEST_KEY:
        return f"{kind}-sha256:{hashlib.sha256(value.encode()).hexdigest()}"
    return f"{kind}:{value}"


@dataclass(frozen=True)
class Attempt:
    """A login under way: the failure rows written for it."""

    user_key: str
    row_ids: tuple[int, ...]


class LoginThrottle:
    """Counts failed logins in the database and refuses keys over their limit.

    Args:
        db: the shared database.
        window_seconds: how far back failures count.
        per_user: failures of one user name in the window before it is throttled.
        per_address: failures from one client address in the window before it is throttled.
    """

    def __init__(self, db: Database, window_seconds: float, per_user: int, per_address: int):
        self.db = db
        self.window = window_seconds
        self.per_user = per_user
        self.per_address = per_address

    def begin(self, username: str, address: str | None) -> Attempt:
        """Record an attempt of ``username`` from ``address`` (None: not known, counted per user only).

        Raises:
            TooManyAttempts: the user name or the address is over its limit; nothing is recorded.
        """
        limits = {failure_key("user", username): self.per_user}
        if address:
            limits[failure_key("address", address)] = self.per_address
        with Session(self.db.write) as s:
            if self.db.is_postgres:  # count and add as one step per key, whatever the other replicas do
                for key in sorted(limits):
                    s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
            now = time.time()
            cutoff = now - self.window
            free_at = 0.0
            for key, limit in limits.items():
                # the limit-th newest failure in the window: while it is in there, the key is over its limit
                nth = s.execute(select(col(LoginFailure.time))
                                .where(col(LoginFailure.key) == key, col(LoginFailure.time) > cutoff)
                                .order_by(col(LoginFailure.time).desc()).offset(limit - 1).limit(1)).scalar()
                if nth is not None:
                    free_at = max(free_at, nth + self.window)
            if free_at:
                s.rollback()
                wait = max(1, math.ceil(free_at - now))
                raise TooManyAttempts(f"too many failed logins; try again in {wait} s", wait)
            s.execute(delete(LoginFailure).where(col(LoginFailure.time) <= cutoff))
            ids = tuple(s.execute(insert(LoginFailure).returning(col(LoginFailure.id)),
                                  [{"key": key, "time": now} for key in limits]).scalars())
            s.commit()
        return Attempt(next(iter(limits)), ids)

    def succeeded(self, attempt: Attempt) -> None:
        """The attempt's password was right: it is no failure, and its user name starts afresh."""
        with Session(self.db.write) as s:
            s.execute(delete(LoginFailure).where(
                col(LoginFailure.id).in_(attempt.row_ids) | (col(LoginFailure.key) == attempt.user_key)))
            s.commit()

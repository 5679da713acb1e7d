"""Lease expiry: a reserved request whose lease ran out goes back to pending.

After ``max_lease_expiries`` expiries it is marked failed instead: a request
that keeps killing its tenants should stop being handed out. The sweep runs
on a schedule (APScheduler) in every replica; row locks (PostgreSQL) or the
write lock (SQLite) make concurrent sweeps safe.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from labweave.schemas.core import RequestStatus as S

from . import lifecycle
from .db.engine import Database
from .db.tables import Request, table_of
from .lifecycle import Actor

log = logging.getLogger(__name__)

REQ = table_of(Request)
#: The name the sweeper's changes are recorded under.
SWEEPER = "lease-sweeper"


def sweep(db: Database, max_expiries: int, now: float | None = None) -> int:
    """Return expired leases to the queue (or fail them); the number handled.

    Each change goes through the request lifecycle as the system's lease sweeper.
    """
    now = time.time() if now is None else now
    stmt = (
        select(REQ)
        .where(REQ.c.status == S.RESERVED.value, REQ.c.lease_expires < now)
        .order_by(REQ.c.id)
        .limit(500)
    )
    if db.is_postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    with db.write.begin() as conn:
        rows = conn.execute(stmt).all()
        for row in rows:
            expiries = row.lease_expiries + 1
            new = S.FAILED if expiries >= max_expiries else S.PENDING
            changes = {"lease_expiries": expiries, "owner_tenant_uuid": None, "lease_expires": None}
            if new == S.FAILED:
                changes["failure_reason"] = f"lease expired {expiries} times"
            holder = row.owner_tenant_uuid
            lifecycle.move_request(
                conn, row, new, {Actor.SYSTEM}, SWEEPER,
                f"lease of tenant {holder} expired ({expiries}/{max_expiries})", now=now,
                data={"tenant_uuid": holder, "lease_expiries": expiries}, **changes)
    if rows:
        log.info("lease sweep: %d expired", len(rows))
    return len(rows)

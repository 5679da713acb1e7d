"""Lease expiry: a reserved request whose lease ran out goes back to pending.

After ``max_lease_expiries`` expiries it is marked failed instead: a request
that keeps killing its tenants should stop being handed out. The sweep runs
on a schedule (APScheduler) in every replica; row locks (PostgreSQL) or the
write lock (SQLite) make concurrent sweeps safe.
"""

from __future__ import annotations

import logging
import time

from sqlmodel import Session, select

from labweave.schemas.core import RequestStatus as S

from .db.engine import Database
from .db.tables import Request
from .events import record

log = logging.getLogger(__name__)


def sweep(db: Database, max_expiries: int, now: float | None = None) -> int:
    """Return expired leases to the queue (or fail them); the number handled."""
    now = time.time() if now is None else now
    with Session(db.write) as s:
        stmt = (
            select(Request)
            .where(Request.status == S.RESERVED.value, Request.lease_expires < now)
            .order_by(Request.id)
            .limit(500)
        )
        if db.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list(s.exec(stmt))
        for row in rows:
            holder = row.owner_tenant_uuid
            row.lease_expiries += 1
            row.owner_tenant_uuid = None
            row.lease_expires = None
            row.updated = now
            new = S.FAILED if row.lease_expiries >= max_expiries else S.PENDING
            if new == S.FAILED:
                row.failure_reason = f"lease expired {row.lease_expiries} times"
            row.status = new.value
            s.add(row)
            record(s, "request.status", row.uuid, "lease-sweeper", from_status=S.RESERVED.value,
                   to_status=new.value, now=now,
                   message=f"lease of tenant {holder} expired ({row.lease_expiries}/{max_expiries})",
                   data={"tenant_uuid": holder, "lease_expiries": row.lease_expiries}, campaign=row.campaign)
        s.commit()
    if rows:
        log.info("lease sweep: %d expired", len(rows))
    return len(rows)

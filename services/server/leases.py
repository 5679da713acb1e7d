"""Lease expiry: a reserved request whose lease ran out goes back to pending.

After ``max_lease_expiries`` expiries it is marked failed instead: a request
that keeps killing its tenants should stop being handed out.

A lease is not judged by wall-clock timestamps: a server clock stepped
forward an hour would expire every lease at once, one stepped back would
keep dead tenants' leases alive. Each reserved request carries its lease's
length and a heartbeat counter (``lease_beat``, raised by every claim,
reservation and heartbeat). The sweeper (:class:`LeaseSweeper`, one per
replica, run on a schedule) notes on its own monotonic clock when it first
saw each request's counter at its present value, and expires the lease once
the counter has stood still for the lease's length. The expiry is a
conditional change (the row locked, and only while it is still reserved at
that counter), so a heartbeat that lands meanwhile wins, and replicas each
sweeping with their own clocks never expire a live lease. A lease is thus
never expired early; it may be expired up to one sweep late, and a replica
that starts afresh counts each lease from when it first sees it. The wall
clock's ``lease_expires`` is kept as what the lease is shown to run until.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

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
#: Expired leases handled per transaction.
BATCH = 500


class LeaseSweeper:
    """Expires leases whose heartbeat counter stood still for their length on ``clock`` (monotonic).

    Args:
        db: the lab's database.
        max_expiries: expiries after which a request fails instead of going back to pending.
        clock: seconds on a clock that never steps (``time.monotonic``; tests pass their own).
    """

    def __init__(self, db: Database, max_expiries: int, clock: Callable[[], float] = time.monotonic):
        self.db = db
        self.max_expiries = max_expiries
        self.clock = clock
        #: request id -> (its heartbeat counter when last seen, when that value was first seen on ``clock``)
        self.seen: dict[int, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def due(self) -> list[tuple[int, int]]:
        """Look at every reserved request; the ``(id, counter)`` of those whose lease ran out."""
        now = self.clock()
        stmt = select(REQ.c.id, REQ.c.lease_beat, REQ.c.lease_seconds).where(REQ.c.status == S.RESERVED.value)
        with self.db.read.connect() as conn:
            held = conn.execute(stmt).all()
        seen: dict[int, tuple[int, float]] = {}
        out = []
        for request_id, beat, lease_seconds in held:
            before = self.seen.get(request_id)
            since = before[1] if before is not None and before[0] == beat else now
            seen[request_id] = (beat, since)
            if lease_seconds is not None and now - since >= lease_seconds:
                out.append((request_id, beat))
        self.seen = seen
        return out

    def sweep(self) -> int:
        """One sweep: return the expired leases' requests to the queue (or fail them); the number handled."""
        with self._lock:
            due = self.due()
            done = 0
            for start in range(0, len(due), BATCH):
                done += self.expire(due[start:start + BATCH])
        if done:
            log.info("lease sweep: %d expired", done)
        return done

    def expire(self, due: list[tuple[int, int]]) -> int:
        """Expire each ``(id, counter)`` still reserved at that counter, through the request lifecycle."""
        beats = dict(due)
        stmt = select(REQ).where(REQ.c.id.in_(beats), REQ.c.status == S.RESERVED.value).order_by(REQ.c.id)
        if self.db.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        done = 0
        now = time.time()  # the events' time: what is recorded, not what decides
        with self.db.write.begin() as conn:
            for row in conn.execute(stmt).all():
                if row.lease_beat != beats[row.id]:
                    continue  # a heartbeat (or a new claim) came in since the sweeper looked
                expiries = row.lease_expiries + 1
                new = S.FAILED if expiries >= self.max_expiries else S.PENDING
                changes = {"lease_expiries": expiries, "owner_tenant_uuid": None, "lease_expires": None}
                if new == S.FAILED:
                    changes["failure_reason"] = f"lease expired {expiries} times"
                holder = row.owner_tenant_uuid
                lifecycle.move_request(
                    conn, row, new, {Actor.SYSTEM}, SWEEPER,
                    f"lease of tenant {holder} expired ({expiries}/{self.max_expiries})", now=now,
                    data={"tenant_uuid": holder, "lease_expiries": expiries}, **changes)
                self.seen.pop(row.id, None)
                done += 1
        return done

"""An operator's pause of the whole lab: tenants stop taking work until it is resumed.

The state is one row of ``lab_state`` (every replica reads the same, and it
survives a restart); each change is recorded as a ``lab.paused`` or
``lab.resumed`` event. While the lab is paused:

- claims and FINALES2 reservations are refused with 409 naming the pause
  (:class:`LabPaused`; its answer carries ``"lab": "paused"`` and a
  ``Retry-After`` so a tenant runtime waits and asks again);
- a tenant's FINALES2 ``/pending_requests/`` lists nothing (FINALES2 tenants
  know no pause: they see no work);
- requests may still be posted, and work already running may finish
  (heartbeats and results are accepted), unless the operator paused with
  ``release_running``: then every reserved request goes back to pending at
  once, its holder's next heartbeat answers that the lease is lost, and the
  tenant stops the job.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select, update

from labweave.schemas.core import RequestStatus as S

from . import lifecycle
from .auth import Principal
from .db.engine import Database
from .db.tables import LabState, Request, table_of
from .errors import Conflict, Forbidden
from .events import record
from .lifecycle import Actor

STATE = table_of(LabState)
REQ = table_of(Request)
#: The seconds a refused claimer is asked to wait before asking again.
RETRY_SECONDS = 10
#: Held requests released per transaction by a pause with ``release_running``.
RELEASE_BATCH = 200


class LabPaused(Conflict):
    """Refused because an operator paused the lab (409, with ``"lab": "paused"``)."""

    retry_after = RETRY_SECONDS


def describe(state: LabState) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.changed))
    why = f": {state.reason}" if state.reason else ""
    return f"the lab is paused by operator {state.changed_by} since {since}{why}; claims resume when it is resumed"


def refuse_if_paused(state: LabState) -> None:
    """Raise :class:`LabPaused` if ``state`` (the ``lab_state`` row, however read) says the lab is paused."""
    if state.paused:
        raise LabPaused(describe(state))


class LabPause:
    def __init__(self, db: Database):
        self.db = db

    def state(self) -> LabState:
        with self.db.read.connect() as conn:
            found = conn.execute(select(STATE).where(STATE.c.id == 1)).mappings().first()
        return LabState(**found) if found is not None else LabState()

    def running(self) -> int:
        """How many requests are reserved (running) now."""
        with self.db.read.connect() as conn:
            return int(conn.execute(select(func.count()).where(REQ.c.status == S.RESERVED.value)).scalar() or 0)

    def refuse_if_paused(self) -> None:
        """Raise :class:`LabPaused` while an operator has the lab paused."""
        refuse_if_paused(self.state())

    def pause(self, p: Principal, release_running: bool, reason: str) -> tuple[LabState, int]:
        """Pause the lab (or change an ongoing pause's reason); release the running work if asked.

        Returns:
            The state now, and how many held requests were released to pending.
        """
        self._operator(p)
        now = time.time()
        with self.db.write.begin() as conn:
            state = self._locked(conn)
            if not state.paused or release_running != state.release_running or reason != state.reason:
                conn.execute(update(STATE).where(STATE.c.id == 1).values(
                    paused=True, release_running=release_running, reason=reason, changed_by=p.username, changed=now))
                record(conn, "lab.paused", "lab", p.username, message=reason,
                       data={"release_running": release_running}, now=now)
        released = self._release_running(p, reason) if release_running else 0
        return self.state(), released

    def resume(self, p: Principal, reason: str) -> LabState:
        self._operator(p)
        now = time.time()
        with self.db.write.begin() as conn:
            if self._locked(conn).paused:
                conn.execute(update(STATE).where(STATE.c.id == 1).values(
                    paused=False, release_running=False, reason=reason, changed_by=p.username, changed=now))
                record(conn, "lab.resumed", "lab", p.username, message=reason, now=now)
        return self.state()

    @staticmethod
    def _operator(p: Principal) -> None:
        if not p.is_operator:
            raise Forbidden("only an operator pauses or resumes the lab")

    def _locked(self, conn) -> LabState:
        stmt = select(STATE).where(STATE.c.id == 1)
        if self.db.is_postgres:
            stmt = stmt.with_for_update()
        found = conn.execute(stmt).mappings().first()
        if found is None:  # a database made before the row existed: it is written here
            conn.execute(STATE.insert().values(id=1, paused=False, release_running=False, reason="",
                                               changed_by="", changed=0.0))
            return LabState()
        return LabState(**found)

    def _release_running(self, p: Principal, reason: str) -> int:
        """Every reserved request back to pending, as the operator (no lease expiry counted)."""
        message = f"released: the lab was paused by operator {p.username}" + (f" ({reason})" if reason else "")
        released = 0
        while True:
            stmt = (select(REQ).where(REQ.c.status == S.RESERVED.value).order_by(REQ.c.id).limit(RELEASE_BATCH))
            if self.db.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            with self.db.write.begin() as conn:
                rows = conn.execute(stmt).all()
                for row in rows:
                    try:
                        lifecycle.move_request(conn, row, S.PENDING, {Actor.OPERATOR}, p.username, message,
                                               data={"tenant_uuid": row.owner_tenant_uuid, "lab": "paused"},
                                               owner_tenant_uuid=None, lease_expires=None)
                    except lifecycle.Moved:
                        continue
                    released += 1
            if len(rows) < RELEASE_BATCH:
                return released

"""The event log: every status change with who, when and why.

Rows of ``event`` are written in the same transaction as the change they
describe, so the log and the state never disagree. The server-sent event
stream reads the same table (by increasing id), which also makes it work
across replicas sharing one PostgreSQL database.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Connection, delete, func, insert
from sqlmodel import Session, col, select

from .db.driver import DriverStatement
from .db.engine import Database
from .db.tables import Event, EventArchive, table_of

log = logging.getLogger(__name__)

INSERT_EVENT = DriverStatement(insert(table_of(Event)))


def event_values(kind: str, subject: str, actor: str, *, from_status: str | None = None,
                 to_status: str | None = None, message: str = "", data: dict[str, Any] | None = None,
                 now: float | None = None, campaign: str | None = None) -> dict[str, Any]:
    """The column values of an event (see :func:`record`)."""
    if campaign:
        data = {"campaign": campaign, **(data or {})}
    return dict(
        time=now if now is not None else time.time(),
        kind=kind,
        subject=subject,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        message=message[:4000],
        data=data or {},
    )


def record(
    session,
    kind: str,
    subject: str,
    actor: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    message: str = "",
    data: dict[str, Any] | None = None,
    now: float | None = None,
    campaign: str | None = None,
) -> None:
    """Add an event to the transaction of ``session`` (an ORM session or a Core connection).

    ``campaign`` (a request's campaign label) goes into ``data``, so that a campaign's
    optimizer can follow its requests on the event stream.
    """
    values = event_values(kind, subject, actor, from_status=from_status, to_status=to_status, message=message,
                          data=data, now=now, campaign=campaign)
    if isinstance(session, Session):
        session.add(Event(**values))
    elif isinstance(session, Connection):
        INSERT_EVENT.execute(session, values)
    else:
        session.execute(INSERT_EVENT.stmt, values)


def since(session: Session, after: int, limit: int = 500, kinds: list[str] | None = None, subject: str | None = None,
          viewer=None):
    """Events after id ``after``, oldest first; only those ``viewer`` (a :class:`.visibility.Viewer`) sees."""
    stmt = select(Event).where(col(Event.id) > after)
    if viewer is not None:
        stmt = viewer.events(stmt)
    if kinds:
        stmt = stmt.where(col(Event.kind).in_(kinds))
    if subject:
        stmt = stmt.where(Event.subject == subject)
    return list(session.exec(stmt.order_by(col(Event.id)).limit(limit)))


def last_id(session: Session) -> int:
    row = session.exec(select(Event.id).order_by(col(Event.id).desc()).limit(1)).first()
    return row or 0


def archive(db: Database, before: float, batch: int = 5000) -> int:
    """Move events older than ``before`` from the live log into ``event_archive``; the number moved.

    Nothing is lost: each batch is copied and deleted in one transaction, ids
    kept, so a request's history still reads whole (:func:`history`). The
    newest event always stays in the live log: its id is where the event
    stream's cursors stand, and an emptied table would hand out small ids again
    (SQLite reuses them).
    """
    live, kept = table_of(Event), table_of(EventArchive)
    moved = 0
    while True:
        with db.write.begin() as conn:
            newest = conn.execute(select(func.max(live.c.id))).scalar() or 0
            ids = [row[0] for row in conn.execute(
                select(live.c.id).where(live.c.time < before, live.c.id < newest).order_by(live.c.id).limit(batch)
            )]
            if not ids:
                return moved
            columns = [c.name for c in kept.columns]
            conn.execute(kept.insert().from_select(columns, select(*[live.c[n] for n in columns])
                                                   .where(live.c.id.in_(ids))))
            conn.execute(delete(live).where(live.c.id.in_(ids)))
        moved += len(ids)
        if len(ids) < batch:
            return moved


def archive_old_events(db: Database, days: float) -> int:
    """The retention job: archive what is older than ``days``; logs what it moved."""
    moved = archive(db, time.time() - days * 86_400)
    if moved:
        log.info("event retention: %d events older than %g days archived", moved, days)
    return moved


def history(session: Session, subject: str, viewer=None) -> list[Event | EventArchive]:
    """Every event about ``subject``, archived ones first, oldest first."""
    old = select(EventArchive).where(EventArchive.subject == subject).order_by(col(EventArchive.id))
    archived: list[Event | EventArchive] = [*session.exec(old)]
    return archived + since(session, 0, limit=100_000, subject=subject, viewer=viewer)

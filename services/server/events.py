"""The event log: every status change with who, when and why.

Rows of ``event`` are written in the same transaction as the change they
describe, so the log and the state never disagree. The server-sent event
stream reads the same table (by increasing id), which also makes it work
across replicas sharing one PostgreSQL database.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from .db.tables import Event, table_of

INSERT_EVENT = insert(table_of(Event))


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
    if campaign:
        data = {"campaign": campaign, **(data or {})}
    values: dict[str, Any] = dict(
        time=now if now is not None else time.time(),
        kind=kind,
        subject=subject,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        message=message[:4000],
        data=data or {},
    )
    if isinstance(session, Session):
        session.add(Event(**values))
    else:
        session.execute(INSERT_EVENT, values)


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

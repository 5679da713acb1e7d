"""Campaigns: the optimizer daemon's spec and state, kept in the server's database.

Keeping the state here lets a daemon be killed and restarted (on any
machine) without losing or repeating work, and lets the dashboard show and
steer every campaign.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from .auth import Principal
from .db.engine import Database
from .db.tables import Campaign, Request
from .errors import Forbidden, Invalid, NotFound
from .events import record

STATUSES = ("running", "paused", "finished", "stopped")


class Campaigns:
    def __init__(self, db: Database):
        self.db = db

    def public(self, row: Campaign, counts: dict[str, int] | None = None) -> dict[str, Any]:
        return {"name": row.name, "status": row.status, "spec": row.spec, "state": row.state,
                "created_by": row.created_by, "created": row.created, "updated": row.updated,
                "counts": counts if counts is not None else self.counts(row.name)}

    def counts(self, name: str) -> dict[str, int]:
        with Session(self.db.read) as s:
            rows = s.exec(select(Request.status, func.count()).where(Request.campaign == name)
                          .group_by(Request.status)).all()
        return {status: n for status, n in rows}

    def list(self) -> list[Campaign]:
        with Session(self.db.read) as s:
            return list(s.exec(select(Campaign).order_by(Campaign.created)))

    def get(self, name: str) -> Campaign:
        with Session(self.db.read) as s:
            row = s.get(Campaign, name)
        if row is None:
            raise NotFound(f"campaign {name!r} not found")
        return row

    def _owned(self, s: Session, p: Principal, name: str) -> Campaign:
        row = s.get(Campaign, name)
        if row is None:
            raise NotFound(f"campaign {name!r} not found")
        if not p.is_operator and row.created_by != p.username:
            raise Forbidden(f"campaign {name!r} belongs to {row.created_by}; only they or an operator may change it")
        return row

    def put(self, p: Principal, name: str, spec: dict[str, Any], status: str | None = None) -> Campaign:
        """Create a campaign, or update the spec of one's own."""
        if p.role == "tenant":
            raise Forbidden("tenants do not run campaigns")
        if status is not None and status not in STATUSES:
            raise Invalid(f"status: one of {', '.join(STATUSES)}, not {status!r}")
        now = time.time()
        with Session(self.db.write) as s:
            row = s.get(Campaign, name)
            if row is None:
                row = Campaign(name=name, spec=spec, status=status or "running", state={}, created_by=p.username,
                               created=now, updated=now)
                record(s, "campaign.created", name, p.username, to_status=row.status)
            else:
                row = self._owned(s, p, name)
                row.spec = spec
                row.updated = now
                if status is not None and status != row.status:
                    record(s, "campaign.status", name, p.username, from_status=row.status, to_status=status)
                    row.status = status
            s.add(row)
            s.commit()
            s.refresh(row)
        return row

    def put_state(self, p: Principal, name: str, state: dict[str, Any]) -> Campaign:
        with Session(self.db.write) as s:
            row = self._owned(s, p, name)
            row.state = state
            row.updated = time.time()
            s.add(row)
            record(s, "campaign.state", name, p.username, message=str(state.get("summary", ""))[:200],
                   data={"n": state.get("n_observations"), "best": state.get("best", {}).get("value")
                         if isinstance(state.get("best"), dict) else None})
            s.commit()
            s.refresh(row)
        return row

    def set_status(self, p: Principal, name: str, status: str, message: str = "") -> Campaign:
        if status not in STATUSES:
            raise Invalid(f"status: one of {', '.join(STATUSES)}, not {status!r}")
        with Session(self.db.write) as s:
            row = self._owned(s, p, name)
            if row.status != status:
                record(s, "campaign.status", name, p.username, from_status=row.status, to_status=status,
                       message=message)
                row.status = status
                row.updated = time.time()
                s.add(row)
            s.commit()
            s.refresh(row)
        return row

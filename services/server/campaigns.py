"""Campaigns: the optimizer daemon's spec and state, kept in the server's database.

Keeping the state here lets a daemon be killed and restarted (on any
machine) without losing or repeating work, and lets the dashboard show and
steer every campaign.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from . import lifecycle
from .auth import Principal
from .db.engine import Database
from .db.tables import Campaign, Request
from .errors import Conflict, Forbidden, Invalid, NotFound
from .events import record
from .lifecycle import CampaignStatus, campaign_actors
from .registry import Registry
from .visibility import Viewer

STATUSES = tuple(s.value for s in CampaignStatus)


def _status(status: str) -> CampaignStatus:
    try:
        return CampaignStatus(status)
    except ValueError:
        raise Invalid(f"status: one of {', '.join(STATUSES)}, not {status!r}") from None


class Campaigns:
    def __init__(self, db: Database, registry: Registry):
        self.db = db
        self.registry = registry

    def counts(self, name: str) -> dict[str, int]:
        with Session(self.db.read) as s:
            rows = s.exec(select(Request.status, func.count()).where(Request.campaign == name)
                          .group_by(Request.status)).all()
        return {status: n for status, n in rows}

    def viewer(self, p: Principal) -> Viewer:
        return Viewer.of(p, self.registry.catalogue())

    def list(self, p: Principal) -> list[Campaign]:
        """The campaigns ``p`` may see, oldest first."""
        with Session(self.db.read) as s:
            return list(s.exec(self.viewer(p).campaigns(select(Campaign).order_by(col(Campaign.created)))))

    def get(self, p: Principal, name: str) -> Campaign:
        """The campaign; 404 if it does not exist or ``p`` may not see it."""
        with Session(self.db.read) as s:
            row = s.exec(self.viewer(p).campaigns(select(Campaign).where(Campaign.name == name))).first()
        if row is None:
            raise NotFound(f"campaign {name!r} not found")
        return row

    def _visible(self, s: Session, p: Principal, name: str) -> bool:
        return s.exec(self.viewer(p).campaigns(select(Campaign.name).where(Campaign.name == name))).first() is not None

    def _owned(self, s: Session, p: Principal, name: str) -> Campaign:
        """The campaign, to change: 404 if ``p`` may not see it, 403 if it sees it but it is another's."""
        row = s.get(Campaign, name)
        if row is None or not self._visible(s, p, name):
            raise NotFound(f"campaign {name!r} not found")
        if not p.is_operator and row.created_by != p.username:
            raise Forbidden(f"campaign {name!r} belongs to {row.created_by}; only they or an operator may change it")
        return row

    def put(self, p: Principal, name: str, spec: dict[str, Any], status: str | None = None) -> Campaign:
        """Create a campaign (running, unless ``status`` says otherwise), or update the spec of one's own
        (and move it to ``status``, if given and different)."""
        new = _status(status) if status is not None else None
        now = time.time()
        with Session(self.db.write) as s:
            row = s.get(Campaign, name)
            if row is None:  # the lifecycle refuses tenants: they do not run campaigns
                row = Campaign(name=name, spec=spec, status=(new or CampaignStatus.RUNNING).value, state={},
                               created_by=p.username, created=now, updated=now)
                lifecycle.open_campaign(s, row, campaign_actors(p, None), p.username)
            else:
                if not self._visible(s, p, name):  # names are shared: say it is taken, and nothing more
                    raise Conflict(f"campaign name {name!r} is taken; choose another")
                row = self._owned(s, p, name)
                row.spec = spec
                row.updated = now
                if new is not None and new.value != row.status:
                    lifecycle.move_campaign(s, row, new, campaign_actors(p, row), p.username, now=now)
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
        """Move a campaign to ``status`` through the campaign lifecycle (the same status again: no change)."""
        new = _status(status)
        with Session(self.db.write) as s:
            row = self._owned(s, p, name)
            if row.status != new.value:
                lifecycle.move_campaign(s, row, new, campaign_actors(p, row), p.username, message)
            s.commit()
            s.refresh(row)
        return row

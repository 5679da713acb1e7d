"""Who sees what: one rule for requests, and results, events and campaigns follow it.

- An operator sees everything.
- A requester sees the requests it posted.
- A tenant's user sees the requests it posted, those its tenant holds or last
  held, and every request in its tenant's line of work: a quantity with one
  of the methods the tenant offers (while it is active). Whether a request
  lies within the tenant's limits is asked when it claims, and by FINALES2's
  ``/pending_requests/``, which lists only those.
- A result is seen by whoever sees its request.
- A campaign is seen by its creator, and by a tenant's user that sees one of
  its requests.
- An event is seen by whoever sees what it is about (its subject: a request,
  a result or a campaign); events of the registry (tenants, capabilities) by
  every user, as the registry itself is.

What a refusal says (every route, checked by ``tests/server/test_access_matrix.py``):

- **401**: no valid token (the dashboard's pages send the browser to its
  login page instead).
- **403**: your role may never do this, whatever the id (a requester
  claiming or heartbeating, anyone but an operator approving a proposal or
  registering a tenant, posting for another tenant), or you see the thing
  but may not make this change to it (the lifecycle's actors: a tenant
  retracting a requester's request, another tenant releasing one it does
  not hold, a user changing a campaign it only sees).
- **404**: the thing does not exist *or you may not see it*, so an answer
  never tells you whether another user's request, result or campaign
  exists (FINALES2's reads answer ``null`` instead, as FINALES2 does).
  A campaign's name is the one exception: names are shared by all, so
  creating one under a name already taken is a 409 naming the problem.
- **409**: you may do this in general, but not in the thing's present
  status (a request already resolved, a lease no longer held).

The rule is rendered once, as SQL: every listing and every read of one row
adds :class:`Viewer`'s filter to its query, so paging and counting stay in
the database. Events already read (the event stream's) are filtered by
:meth:`Viewer.visible_events`, which asks the same filters about their
subjects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import and_, exists, or_, select

from .auth import Principal
from .db.tables import Campaign, Event, Request, RequestMethod, Result, table_of
from .registry import Catalogue

REQ = table_of(Request)
METHODS = table_of(RequestMethod)
RES = table_of(Result)
CAMPAIGN = table_of(Campaign)
EVENT = table_of(Event)


class Narrowable(Protocol):
    """A statement that takes WHERE conditions (a select of SQLAlchemy's or SQLModel's)."""

    def where(self: "Q", *whereclause: Any) -> "Q": ...


Q = TypeVar("Q", bound=Narrowable)

#: Event kinds (by the part before the dot) every signed-in user may read, as they read the registry
#: (and the lab's own pause and resume, which every tenant waits on).
PUBLIC_EVENTS = ("tenant", "capability", "lab")


@dataclass(frozen=True)
class Viewer:
    """What one principal may see.

    Each ``*_filter`` method is a SQL condition on its table, or ``None`` for
    "everything"; the plain-named methods add it to a statement.
    """

    username: str
    sees_all: bool = False
    tenant_uuid: str | None = None
    #: The tenant's line of work: quantity -> the methods it offers.
    offers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, p: Principal, cat: Catalogue) -> "Viewer":
        if p.is_operator:
            return cls(p.username, sees_all=True)
        if p.role != "tenant" or not p.tenant_uuid:
            return cls(p.username)
        offers = {q: tuple(sorted(ms)) for q, ms in cat.tenant_offers(p.tenant_uuid).items()}
        return cls(p.username, tenant_uuid=p.tenant_uuid, offers=offers)

    # -- requests: the rule itself ------------------------------------------------
    def request_filter(self):
        if self.sees_all:
            return None
        c = REQ.c
        mine = c.created_by == self.username
        if self.tenant_uuid is None:
            return mine
        alternatives = [mine, c.owner_tenant_uuid == self.tenant_uuid, c.last_owner_uuid == self.tenant_uuid]
        if self.offers:
            offered = or_(*(and_(METHODS.c.quantity == q, METHODS.c.method.in_(ms)) for q, ms in self.offers.items()))
            alternatives.append(exists().where(METHODS.c.request_id == c.id, offered))
        return or_(*alternatives)

    def result_filter(self):
        if self.sees_all:
            return None
        return RES.c.request_uuid.in_(self.requests(select(REQ.c.uuid)))

    def campaign_filter(self):
        if self.sees_all:
            return None
        mine = CAMPAIGN.c.created_by == self.username
        if self.tenant_uuid is None:
            return mine
        return or_(mine, exists(self.requests(select(REQ.c.id).where(REQ.c.campaign == CAMPAIGN.c.name))))

    def event_filter(self):
        if self.sees_all:
            return None
        k = EVENT.c.kind
        alternatives = [k.startswith(f"{kind}.") for kind in PUBLIC_EVENTS]
        for kind, visible, _ in self._subjects():
            alternatives.append(and_(k.startswith(f"{kind}."), EVENT.c.subject.in_(visible)))
        return or_(*alternatives)

    def _subjects(self):
        """(event kind, a query of the visible subjects' keys, its key column) for each kind of subject."""
        return [
            ("request", self.requests(select(REQ.c.uuid)), REQ.c.uuid),
            ("result", self.results(select(RES.c.uuid)), RES.c.uuid),
            ("campaign", self.campaigns(select(CAMPAIGN.c.name)), CAMPAIGN.c.name),
        ]

    # -- applied to statements ------------------------------------------------------
    @staticmethod
    def _where(stmt: Q, condition: Any) -> Q:
        return stmt if condition is None else stmt.where(condition)

    def requests(self, stmt: Q) -> Q:
        """``stmt`` (a query of the request table) narrowed to what this viewer sees."""
        return self._where(stmt, self.request_filter())

    def results(self, stmt: Q) -> Q:
        return self._where(stmt, self.result_filter())

    def campaigns(self, stmt: Q) -> Q:
        return self._where(stmt, self.campaign_filter())

    def events(self, stmt: Q) -> Q:
        return self._where(stmt, self.event_filter())

    # -- events already read ----------------------------------------------------------
    def visible_events(self, conn, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events (as the API shows them) of ``items`` this viewer sees; ``conn`` reads the subjects."""
        if self.sees_all or not items:
            return items
        seen: set[tuple[str, str]] = set()
        for kind, visible, key in self._subjects():
            wanted = {i["subject"] for i in items if i["kind"].startswith(f"{kind}.")}
            if wanted:
                found = conn.execute(visible.where(key.in_(wanted))).scalars()
                seen.update((kind, subject) for subject in found)
        return [i for i in items
                if i["kind"].split(".", 1)[0] in PUBLIC_EVENTS or (i["kind"].split(".", 1)[0], i["subject"]) in seen]


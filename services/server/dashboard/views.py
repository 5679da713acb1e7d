"""What the dashboard's pages show about tenants, the queue and recent activity, read from the lab's database.

Each function returns plain dataclasses for the templates; none of them
changes anything. Each shows what its user may see, by the API's rule
(:mod:`labweave.services.server.visibility`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from labweave.schemas.core import RequestStatus as S

from ..auth import Principal
from ..db.tables import Event, Request, Result, Tenant
from ..errors import Invalid
from ..visibility import Viewer
from . import text

#: Statuses still moving through the queue, in the order the page lists them.
ACTIVE = (S.PROPOSED.value, S.RESERVED.value, S.PENDING.value)
#: Statuses a request ends in.
FINAL = (S.RESOLVED.value, S.FAILED.value, S.RETRACTED.value, S.UNSOLICITED.value)
ALL_STATUSES = ACTIVE + FINAL
#: Section titles of the queue page, by status.
TITLES = {
    S.PROPOSED.value: "Awaiting approval",
    S.RESERVED.value: "Running (reserved)",
    S.PENDING.value: "Queued (pending)",
    S.RESOLVED.value: "Recent results",
    S.FAILED.value: "Failures",
    S.RETRACTED.value: "Retracted",
    S.UNSOLICITED.value: "Unsolicited results",
}
#: How many requests of an active status one page lists at most.
ACTIVE_LIMIT = 500
#: How many of the newest finished requests a section lists.
RECENT_LIMIT = 25
#: How many of the newest rows a text search looks through per status.
SEARCH_SCAN = 2000

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def viewer(lab, p: Principal) -> Viewer:
    return Viewer.of(p, lab.registry.catalogue())


# -- tenants -------------------------------------------------------------------
@dataclass
class Offer:
    """A quantity and method a tenant serves, and its limits."""

    quantity: str
    method: str
    limits: str
    limits_json: str


@dataclass
class Held:
    """A request a tenant holds, with its lease."""

    uuid: str
    quantity: str
    methods: list[str]
    campaign: str | None
    lease_expires: float | None


@dataclass
class TenantRow:
    uuid: str
    name: str
    contact: str
    connection: str  # online | offline | never seen
    last_seen: float | None
    is_active: bool
    stop_requested: bool
    offers: list[Offer] = field(default_factory=list)
    holds: list[Held] = field(default_factory=list)

    @property
    def badge(self) -> str:
        """The one status the table shows first: what matters most to an operator."""
        if not self.is_active:
            return "inactive"
        if self.stop_requested:
            return "stop requested"
        return self.connection


def connection(last_seen: float | None, now: float, offline_seconds: float) -> str:
    """``online`` if the tenant was heard from within ``offline_seconds``, else ``offline`` (or ``never seen``)."""
    if last_seen is None:
        return "never seen"
    return "online" if now - last_seen < offline_seconds else "offline"


def tenants(lab, p: Principal, now: float | None = None) -> list[TenantRow]:
    """Every registered tenant: online or not, what it offers within which limits, what it holds."""
    now = time.time() if now is None else now
    offline = lab.settings.tenant_offline_seconds
    with Session(lab.db.read) as s:
        rows = list(s.exec(select(Tenant).order_by(Tenant.name)))
        held_stmt = select(Request).where(Request.status == S.RESERVED.value).order_by(col(Request.lease_expires))
        held = list(s.exec(viewer(lab, p).requests(held_stmt)))
    by_owner: dict[str, list[Held]] = {}
    for r in held:
        if r.owner_tenant_uuid:
            by_owner.setdefault(r.owner_tenant_uuid, []).append(
                Held(r.uuid, r.quantity, list(r.methods), r.campaign, r.lease_expires))
    out = []
    for t in rows:
        offers = [Offer(e.get("quantity", "?"), e.get("method", "?"), text.limits(e.get("limitations", {})),
                        text.pretty_json(e.get("limitations", {}))) for e in t.limitations]
        out.append(TenantRow(t.uuid, t.name, t.contact_person, connection(t.last_seen, now, offline), t.last_seen,
                             t.is_active, t.stop_requested, offers, by_owner.get(t.uuid, [])))
    return out


def dead_letters(lab, p: Principal) -> list:
    """The results tenants keep because the server refused them (operators only; others see none)."""
    return lab.dead_letters.listing() if p.is_operator else []


# -- the queue -----------------------------------------------------------------
@dataclass
class QueueFilter:
    """The queue page's filters, read from its query string.

    Args:
        statuses: the statuses to list (default: all).
        quantity: only requests for this quantity.
        campaign: only requests of this campaign.
        tenant: only requests held by, or last held by, this tenant (a UUID).
        q: free text searched in the UUID, quantity, methods, campaign, author,
            failure reason, provenance and parameters.
    """

    statuses: list[str] = field(default_factory=lambda: list(ALL_STATUSES))
    quantity: str = ""
    campaign: str = ""
    tenant: str = ""
    q: str = ""

    @classmethod
    def from_query(cls, params) -> "QueueFilter":
        """Read the filters from a query string (``status`` may repeat, or be ``active``/``all``).

        Raises:
            Invalid: an unknown status (naming the field).
        """
        wanted: list[str] = []
        for value in params.getlist("status"):
            for item in value.split(","):
                item = item.strip()
                if not item or item == "all":
                    continue
                if item == "active":
                    wanted.extend(ACTIVE)
                elif item == "final":
                    wanted.extend(FINAL)
                elif item in ALL_STATUSES:
                    wanted.append(item)
                else:
                    raise Invalid(f"status: unknown status {item!r}; one of {', '.join(ALL_STATUSES)}, "
                                  f"active, final or all")
        statuses = [s for s in ALL_STATUSES if s in wanted] or list(ALL_STATUSES)
        return cls(statuses=statuses, quantity=params.get("quantity", "").strip(),
                   campaign=params.get("campaign", "").strip(), tenant=params.get("tenant", "").strip(),
                   q=params.get("q", "").strip()[:200])

    @property
    def status_choice(self) -> str:
        """The status select's value: ``all``, ``active``, ``final`` or the one status."""
        if self.statuses == list(ALL_STATUSES):
            return "all"
        if self.statuses == list(ACTIVE):
            return "active"
        if self.statuses == list(FINAL):
            return "final"
        return self.statuses[0] if len(self.statuses) == 1 else "all"

    def query(self) -> dict[str, str]:
        out = {"status": self.status_choice, "quantity": self.quantity, "campaign": self.campaign,
               "tenant": self.tenant, "q": self.q}
        return {k: v for k, v in out.items() if v and not (k == "status" and v == "all")}


@dataclass
class QueueRow:
    uuid: str
    status: str
    quantity: str
    methods: list[str]
    campaign: str | None
    priority: int
    created_by: str
    ctime: float
    updated: float
    holder: str | None  # tenant name
    holder_uuid: str | None
    lease_expires: float | None
    attempts: int
    lease_expiries: int
    failure_reason: str | None
    parameters: str
    parameters_json: str
    provenance: dict[str, Any]
    result: str = ""
    result_json: str = ""


@dataclass
class Section:
    status: str
    title: str
    rows: list[QueueRow]
    total: int  # in the database under the non-text filters

    @property
    def shown(self) -> int:
        return len(self.rows)


@dataclass
class Queue:
    sections: list[Section]
    counts: dict[str, int]
    quantities: list[str]
    campaigns: list[str]
    tenants: dict[str, str]  # uuid -> name


def _matches(row: Request, needle: str, tenant_names: dict[str, str]) -> bool:
    hay = " ".join([
        row.uuid, row.status, row.quantity, " ".join(row.methods), row.campaign or "", row.created_by,
        row.failure_reason or "", tenant_names.get(row.owner_tenant_uuid or row.last_owner_uuid or "", ""),
        text.pretty_json(row.provenance), text.pretty_json(row.parameters),
    ]).lower()
    return all(word in hay for word in needle.lower().split())


def queue(lab, p: Principal, f: QueueFilter, now: float | None = None) -> Queue:
    """The queue under the filters: active requests in full, finished ones newest first."""
    seen = viewer(lab, p)
    with Session(lab.db.read) as s:
        tenant_names = dict(s.exec(select(Tenant.uuid, Tenant.name)).all())

        def base(stmt):
            if f.quantity:
                stmt = stmt.where(Request.quantity == f.quantity)
            if f.campaign:
                stmt = stmt.where(Request.campaign == f.campaign)
            if f.tenant:
                stmt = stmt.where((Request.owner_tenant_uuid == f.tenant) | (Request.last_owner_uuid == f.tenant))
            return seen.requests(stmt)

        counts = dict(s.exec(base(select(Request.status, func.count())).group_by(Request.status)).all())
        sections = []
        for status in f.statuses:
            stmt = base(select(Request)).where(Request.status == status)
            if status == S.PENDING.value:
                stmt = stmt.order_by(col(Request.priority).desc(), col(Request.id))
            elif status == S.RESERVED.value:
                stmt = stmt.order_by(col(Request.lease_expires))
            elif status == S.PROPOSED.value:
                stmt = stmt.order_by(col(Request.id))
            else:
                stmt = stmt.order_by(col(Request.updated).desc(), col(Request.id).desc())
            limit = ACTIVE_LIMIT if status in ACTIVE else RECENT_LIMIT
            rows = list(s.exec(stmt.limit(SEARCH_SCAN if f.q else limit)))
            if f.q:
                rows = [r for r in rows if _matches(r, f.q, tenant_names)][:limit]
            sections.append(Section(status, TITLES[status], [queue_row(r, tenant_names) for r in rows],
                                    counts.get(status, 0)))
        resolved = [row for sec in sections if sec.status in (S.RESOLVED.value, S.UNSOLICITED.value)
                    for row in sec.rows]
        if resolved:
            results = s.exec(select(Result).where(col(Result.request_uuid).in_([r.uuid for r in resolved]),
                                                  Result.status != "deleted").order_by(col(Result.id))).all()
            by_request: dict[str | None, Result] = {}
            for res in results:
                by_request.setdefault(res.request_uuid, res)
            for row in resolved:
                first = by_request.get(row.uuid)
                if first is not None:
                    row.result = text.numbers_summary(first.data)
                    row.result_json = text.pretty_json(first.data)
        quantities = sorted(set(s.exec(seen.requests(select(Request.quantity).distinct())).all()))
        campaigns = sorted(c for c in set(s.exec(seen.requests(select(Request.campaign).distinct())).all()) if c)
    return Queue(sections, counts, quantities, campaigns, tenant_names)


def queue_row(r: Request, tenant_names: dict[str, str]) -> QueueRow:
    holder_uuid = r.owner_tenant_uuid or (r.last_owner_uuid if r.status == S.FAILED.value else None)
    return QueueRow(
        uuid=r.uuid, status=r.status, quantity=r.quantity, methods=list(r.methods), campaign=r.campaign,
        priority=r.priority, created_by=r.created_by, ctime=r.ctime, updated=r.updated,
        holder=tenant_names.get(holder_uuid, text.short(holder_uuid)) if holder_uuid else None,
        holder_uuid=holder_uuid, lease_expires=r.lease_expires, attempts=r.attempts,
        lease_expiries=r.lease_expiries, failure_reason=r.failure_reason,
        parameters=text.parameters_summary(r.parameters), parameters_json=text.pretty_json(r.parameters),
        provenance=r.provenance or {},
    )


# -- counts and activity ---------------------------------------------------------
def status_counts(lab, p: Principal) -> dict[str, int]:
    """How many requests (the principal may see) are in each status."""
    stmt = viewer(lab, p).requests(select(Request.status, func.count()).group_by(Request.status))
    with Session(lab.db.read) as s:
        found = dict(s.exec(stmt).all())
    return {status: found.get(status, 0) for status in ALL_STATUSES}


@dataclass
class Activity:
    id: int
    time: float
    kind: str
    category: str  # request | result | tenant | campaign | registry
    actor: str
    text: str
    message: str
    to_status: str | None


def describe(e: Event, tenant_names: dict[str, str]) -> Activity:
    """One event of the log as a line a person reads."""
    if e.id is None:
        raise ValueError("only a stored event has a place in the activity log")
    category = e.kind.split(".", 1)[0]
    subject = e.subject
    if e.kind == "request.status":
        move = f"{e.from_status} → {e.to_status}" if e.from_status else f"created as {e.to_status}"
        line = f"request {text.short(subject)} {move}"
    elif e.kind == "result.posted":
        line = f"result posted for request {text.short(str(e.data.get('request_uuid', '')))}"
    elif e.kind == "result.status":
        line = f"result {text.short(subject)} marked {e.to_status}"
    elif category == "tenant":
        name = tenant_names.get(subject, e.message or text.short(subject))
        what = {"tenant.stop_requested": "asked to stop (emergency stop)", "tenant.resumed": "resumed",
                "tenant.registered": "registered", "tenant.updated": "updated",
                "tenant.activated": "activated", "tenant.deactivated": "deactivated"}.get(e.kind, e.kind)
        line = f"tenant {name} {what}"
    elif e.kind == "campaign.status":
        line = f"campaign {subject} {e.from_status or 'new'} → {e.to_status}"
    elif e.kind == "campaign.state":
        best = e.data.get("best")
        line = f"campaign {subject}: model updated" + (f", best {text.number(best)}" if best is not None else "")
    elif e.kind == "campaign.created":
        line = f"campaign {subject} created"
    else:
        category = "registry"
        line = f"{e.kind.replace('.', ' ')} {subject}"
    message = e.message if e.kind not in ("tenant.registered", "tenant.updated", "tenant.stop_requested",
                                         "tenant.resumed") else ""
    for uuid in _UUID.findall(message):  # "claimed by tenant <uuid>": say which
        if uuid in tenant_names:
            message = message.replace(uuid, tenant_names[uuid])
    return Activity(e.id, e.time, e.kind, category, e.actor, line, message, e.to_status)


def activity(lab, p: Principal, limit: int = 20) -> list[Activity]:
    """The newest events ``p`` may see, newest first."""
    with Session(lab.db.read) as s:
        rows = list(s.exec(viewer(lab, p).events(select(Event)).order_by(col(Event.id).desc()).limit(limit)))
        tenant_names = dict(s.exec(select(Tenant.uuid, Tenant.name)).all())
    return [describe(e, tenant_names) for e in rows]

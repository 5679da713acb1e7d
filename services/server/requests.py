"""Requests: creation, listing, claims with leases, and every status change.

Each change runs in one transaction that locks the request row (``FOR
UPDATE`` on PostgreSQL; SQLite's write transactions are ``BEGIN
IMMEDIATE``), checks the transition against :mod:`.lifecycle`, applies it
and records the event.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import bindparam, exists, insert, update
from sqlmodel import Session, select

from labweave.schemas.api import ClaimCreate, RequestCreate
from labweave.schemas.core import RequestStatus as S

from . import lifecycle
from .auth import Principal
from .db.engine import Database
from .db.tables import Request, RequestMethod, Tenant
from .errors import Conflict, Forbidden, Invalid, NotFound
from .events import record
from .lifecycle import Actor
from .registry import Catalogue, Registry

CLAIM_BATCH = 4  # most claims take the first candidate; a deeper scan reads more per round
CLAIM_SCAN_BATCH = 64
CLAIM_SCAN_LIMIT = 1024

REQ = Request.__table__
METHODS = RequestMethod.__table__


# Statements built once: executing them with parameters skips SQLAlchemy's per-call coercion.
INSERT_REQUEST = insert(REQ).returning(REQ.c.id)
INSERT_METHOD = insert(METHODS)
TAKE = (
    update(REQ)
    .where(REQ.c.id == bindparam("b_id"), REQ.c.status == S.PENDING.value)
    .values(status=S.RESERVED.value, owner_tenant_uuid=bindparam("b_owner"), last_owner_uuid=bindparam("b_owner"),
            lease_seconds=bindparam("b_lease"), lease_expires=bindparam("b_expires"), updated=bindparam("b_now"))
    .returning(*REQ.c)
)


def as_row(mapping) -> SimpleNamespace:
    """A request row read with Core: attribute access, no ORM identity map."""
    return SimpleNamespace(**mapping)


@dataclass
class Policy:
    lease_seconds: float = 300.0
    max_attempts: int = 3
    max_lease_expiries: int = 3


def actors_for(p: Principal, row: Request | None, cat: Catalogue) -> set[Actor]:
    """Every role the principal plays towards this request (None: a new one)."""
    actors: set[Actor] = set()
    if p.is_operator:
        actors.add(Actor.OPERATOR)
    if row is None:
        if p.role == "requester":
            actors.add(Actor.REQUESTER)
        if p.role == "tenant":
            actors.update({Actor.REQUESTER, Actor.TENANT})
        return actors
    if row.created_by == p.username:
        actors.add(Actor.REQUESTER)
    t = p.tenant_uuid
    if t:
        if row.status == S.RESERVED and row.owner_tenant_uuid == t:
            actors.add(Actor.OWNER)
        if row.owner_tenant_uuid is None and row.last_owner_uuid == t:
            actors.add(Actor.LATE_OWNER)
        tenant = cat.tenants.get(t)
        if tenant is not None and tenant.is_active and cat.can_serve(t, row.quantity, row.methods, row.parameters):
            actors.add(Actor.TENANT)
    return actors


def visible(p: Principal, row: Request) -> bool:
    """Requesters see their own requests; tenants and operators see all."""
    return p.role != "requester" or row.created_by == p.username


class Requests:
    def __init__(self, db: Database, registry: Registry, policy: Policy):
        self.db = db
        self.registry = registry
        self.policy = policy
        self._seen: dict[str, float] = {}
        self._claim_statements: dict = {}

    # -- reading -----------------------------------------------------------
    def get(self, p: Principal, request_uuid: str) -> Request | None:
        with self.db.read.connect() as conn:
            found = conn.execute(select(REQ).where(REQ.c.uuid == request_uuid)).mappings().first()
        row = as_row(found) if found is not None else None
        if row is None or not visible(p, row):
            return None
        return row

    def require(self, p: Principal, request_uuid: str) -> Request:
        row = self.get(p, request_uuid)
        if row is None:
            raise NotFound(f"request {request_uuid} not found")
        return row

    def list(
        self,
        p: Principal,
        *,
        status: list[str] | None = None,
        quantity: str | None = None,
        method: str | None = None,
        campaign: str | None = None,
        owner: str | None = None,
        parent: str | None = None,
        created_by: str | None = None,
        after: int | None = None,
        limit: int | None = None,
        servable_only: bool = False,
        queue_order: bool = False,
    ) -> list[Request]:
        c = REQ.c
        stmt = select(REQ)
        if status:
            stmt = stmt.where(c.status.in_(status) if len(status) > 1 else c.status == status[0])
        if quantity:
            stmt = stmt.where(c.quantity == quantity)
        if method:
            stmt = stmt.where(exists().where(METHODS.c.request_id == c.id, METHODS.c.method == method))
        if campaign:
            stmt = stmt.where(c.campaign == campaign)
        if owner:
            stmt = stmt.where(c.owner_tenant_uuid == owner)
        if parent:
            stmt = stmt.where(c.parent_uuid == parent)
        if p.role == "requester":
            stmt = stmt.where(c.created_by == p.username)
        elif created_by:
            stmt = stmt.where(c.created_by == created_by)
        if after is not None:
            stmt = stmt.where(c.id > after)
        stmt = stmt.order_by(c.priority.desc(), c.id) if queue_order else stmt.order_by(c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.db.read.connect() as conn:
            rows = [as_row(m) for m in conn.execute(stmt).mappings()]
        if servable_only and p.tenant_uuid and not p.is_operator:
            cat = self.registry.catalogue()
            rows = [r for r in rows if cat.can_serve(p.tenant_uuid, r.quantity, r.methods, r.parameters)]
        return rows

    # -- creating ----------------------------------------------------------
    def create(self, p: Principal, body: RequestCreate) -> Request:
        cat = self.registry.catalogue()
        if body.tenant_uuid not in cat.tenants:
            raise Invalid(f"tenant_uuid: unknown tenant {body.tenant_uuid!r}")
        if p.tenant_uuid and not p.is_operator and body.tenant_uuid != p.tenant_uuid:
            raise Forbidden(f"tenant_uuid: you act for tenant {p.tenant_uuid}, not {body.tenant_uuid}")
        self.registry.check_request(body.quantity, body.methods, body.parameters)
        status = S.PROPOSED if body.proposed else S.PENDING
        lifecycle.check(None, status, actors_for(p, None, cat))
        now = time.time()
        values = dict(
            uuid=str(uuidlib.uuid4()),
            ctime=now,
            updated=now,
            status=status.value,
            quantity=body.quantity,
            methods=body.methods,
            parameters=body.parameters,
            tenant_uuid=body.tenant_uuid,
            priority=body.priority,
            owner_tenant_uuid=None,
            last_owner_uuid=None,
            lease_expires=None,
            lease_seconds=None,
            lease_expiries=0,
            attempts=0,
            failure_reason=None,
            parent_uuid=body.parent_uuid,
            campaign=body.campaign,
            provenance=body.provenance,
            created_by=p.username,
        )
        with self.db.write.begin() as conn:
            if body.parent_uuid and conn.execute(
                select(REQ.c.id).where(REQ.c.uuid == body.parent_uuid)
            ).first() is None:
                raise Invalid(f"parent_uuid: unknown request {body.parent_uuid}")
            values["id"] = conn.execute(INSERT_REQUEST, values).scalar_one()
            conn.execute(INSERT_METHOD, [{"request_id": values["id"], "method": m, "quantity": body.quantity}
                                           for m in body.methods])
            record(conn, "request.status", values["uuid"], p.username, to_status=status.value, now=now,
                   data={"quantity": body.quantity, "methods": body.methods}, campaign=body.campaign)
        return as_row(values)

    # -- changing status ---------------------------------------------------
    def _locked(self, s: Session, request_uuid: str) -> Request:
        row = s.exec(select(Request).where(Request.uuid == request_uuid).with_for_update()).first()
        if row is None:
            raise NotFound(f"request {request_uuid} not found")
        return row

    def _move(self, s: Session, row: Request, new: S, actor: str, message: str, now: float, **data) -> None:
        old = row.status
        row.status = new.value
        row.updated = now
        s.add(row)
        record(s, "request.status", row.uuid, actor, from_status=old, to_status=new.value, message=message,
               now=now, data=data, campaign=row.campaign)

    def transition(self, p: Principal, request_uuid: str, new: S, message: str = "") -> Request:
        """The FINALES2 ``update_status`` route: pending, reserved or retracted."""
        if new == S.RESERVED:
            return self.reserve(p, request_uuid, None)
        if new == S.PENDING:
            with Session(self.db.read) as s:
                current = s.exec(select(Request.status).where(Request.uuid == request_uuid)).first()
            if current == S.PROPOSED:
                return self.approve(p, request_uuid, message)
            return self.release(p, request_uuid, message or "released")
        if new == S.RETRACTED:
            return self.cancel(p, request_uuid, message or "retracted")
        raise Invalid(f"new_status: {new.value} cannot be set directly; use pending, reserved or retracted")

    def _change(self, p: Principal, request_uuid: str, new: S, message: str, apply=None) -> Request:
        cat = self.registry.catalogue()
        now = time.time()
        with Session(self.db.write) as s:
            row = self._locked(s, request_uuid)
            if not visible(p, row):
                raise NotFound(f"request {request_uuid} not found")
            if row.status == new.value:
                raise Conflict(f"request {request_uuid} is already {new.value}")
            lifecycle.check(S(row.status), new, actors_for(p, row, cat))
            if apply is not None:
                new = apply(row, now) or new
            self._move(s, row, new, p.username, message, now)
            s.commit()
            s.refresh(row)
        return row

    def _held(self, row: Request, now: float) -> None:
        row.owner_tenant_uuid = None
        row.lease_expires = None

    def reserve(self, p: Principal, request_uuid: str, lease_seconds: float | None) -> Request:
        if not p.tenant_uuid:
            raise Forbidden("only a tenant user can reserve a request (log in as the tenant's user)")
        self._check_tenant(p.tenant_uuid)
        lease = lease_seconds or self.policy.lease_seconds

        def grant(row: Request, now: float):
            row.owner_tenant_uuid = p.tenant_uuid
            row.last_owner_uuid = p.tenant_uuid
            row.lease_seconds = lease
            row.lease_expires = now + lease

        return self._change(p, request_uuid, S.RESERVED, f"reserved by tenant {p.tenant_uuid}", grant)

    def release(self, p: Principal, request_uuid: str, reason: str) -> Request:
        return self._change(p, request_uuid, S.PENDING, reason, self._held)

    def cancel(self, p: Principal, request_uuid: str, reason: str) -> Request:
        return self._change(p, request_uuid, S.RETRACTED, reason, self._held)

    def approve(self, p: Principal, request_uuid: str, message: str = "") -> Request:
        return self._change(p, request_uuid, S.PENDING, message or "approved")

    def fail(self, p: Principal, request_uuid: str, reason: str, retryable: bool) -> Request:
        def apply(row: Request, now: float):
            self._held(row, now)
            row.failure_reason = reason
            if retryable:
                row.attempts += 1
                if row.attempts < self.policy.max_attempts:
                    return S.PENDING
            return S.FAILED

        cat = self.registry.catalogue()
        now = time.time()
        with Session(self.db.write) as s:
            row = self._locked(s, request_uuid)
            lifecycle.check(S(row.status), S.FAILED, actors_for(p, row, cat))
            new = apply(row, now)
            note = f"{'retryable' if retryable else 'final'} failure: {reason}"
            self._move(s, row, new, p.username, note, now, retryable=retryable, attempts=row.attempts)
            s.commit()
            s.refresh(row)
        return row

    def heartbeat(self, p: Principal, request_uuid: str, lease_seconds: float | None = None) -> Request:
        now = time.time()
        with Session(self.db.write) as s:
            row = self._locked(s, request_uuid)
            if row.status != S.RESERVED or row.owner_tenant_uuid != p.tenant_uuid or not p.tenant_uuid:
                raise Conflict(f"request {request_uuid} is not held by your tenant: the lease is lost")
            lease = lease_seconds or row.lease_seconds or self.policy.lease_seconds
            row.lease_seconds = lease
            row.lease_expires = now + lease
            row.updated = now
            s.add(row)
            s.commit()
            s.refresh(row)
        self.touch(p.tenant_uuid)
        return row

    # -- claims ------------------------------------------------------------
    def _check_tenant(self, tenant_uuid: str) -> Tenant:
        cat = self.registry.catalogue()
        tenant = cat.tenants.get(tenant_uuid)
        if tenant is None:
            raise Forbidden(f"tenant {tenant_uuid} is not registered")
        if not tenant.is_active:
            raise Conflict(f"tenant {tenant.name} is not active")
        if tenant.stop_requested:
            raise Conflict(f"tenant {tenant.name} has been asked to stop; an operator must resume it")
        return tenant

    def claim(self, p: Principal, body: ClaimCreate) -> Request | None:
        """Atomically take the next request this tenant can serve, by priority then age."""
        if not p.tenant_uuid:
            raise Forbidden("claims are made by a tenant user")
        self._check_tenant(p.tenant_uuid)
        self.touch(p.tenant_uuid)
        cat = self.registry.catalogue()
        offers = cat.tenant_offers(p.tenant_uuid)
        if body.quantity:
            offers = {body.quantity: offers.get(body.quantity, [])}
        if body.methods:
            offers = {q: [m for m in ms if m in body.methods] for q, ms in offers.items()}
        offers = {q: ms for q, ms in offers.items() if ms}
        if not offers:
            return None
        lease = body.lease_seconds or self.policy.lease_seconds
        skip: list[int] = []
        scanned = 0
        while scanned < CLAIM_SCAN_LIMIT:
            with self.db.write.begin() as conn:
                candidates = []
                for q, ms in offers.items():  # one indexed walk per quantity, merged by priority then age
                    stmt = self._candidates(q, tuple(ms), bool(skip))
                    params = {"b_quantity": q} | ({"b_skip": skip} if skip else {})
                    candidates += conn.execute(stmt, params).all()
                if not candidates:
                    return None
                candidates.sort(key=lambda r: (-r.priority, r.id))
                for cand in candidates:
                    scanned += 1
                    if not cat.can_serve(p.tenant_uuid, cand.quantity, cand.methods, cand.parameters):
                        skip.append(cand.id)
                        continue
                    now = time.time()
                    taken = conn.execute(
                        TAKE, {"b_id": cand.id, "b_owner": p.tenant_uuid, "b_lease": lease,
                               "b_expires": now + lease, "b_now": now}
                    ).mappings().first()
                    if taken is None:
                        continue  # another claimer won this one
                    record(conn, "request.status", cand.uuid, p.username, from_status=S.PENDING.value,
                           to_status=S.RESERVED.value, message=f"claimed by tenant {p.tenant_uuid}", now=now,
                           data={"tenant_uuid": p.tenant_uuid, "lease_seconds": lease}, campaign=taken.get("campaign"))
                    return as_row(taken)
        return None

    def _candidates(self, quantity: str, methods: tuple[str, ...], scanning: bool):
        """The claim query for one quantity, built once per (methods, scanning) and reused."""
        key = (methods, scanning)
        stmt = self._claim_statements.get(key)
        if stmt is None:
            c = REQ.c
            stmt = (
                select(c.id, c.uuid, c.priority, c.quantity, c.methods, c.parameters)
                .where(c.status == S.PENDING.value, c.quantity == bindparam("b_quantity"))
                .where(exists().where(METHODS.c.request_id == c.id, METHODS.c.method.in_(methods)))
                .order_by(c.priority.desc(), c.id)
                .limit(CLAIM_SCAN_BATCH if scanning else CLAIM_BATCH)
            )
            if scanning:
                stmt = stmt.where(c.id.notin_(bindparam("b_skip", expanding=True)))
            if self.db.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            if len(self._claim_statements) > 1000:
                self._claim_statements.clear()
            self._claim_statements[key] = stmt
        return stmt

    def touch(self, tenant_uuid: str) -> None:
        """Note that a tenant is alive (written at most once a second)."""
        now = time.time()
        if now - self._seen.get(tenant_uuid, 0.0) < 1.0:
            return
        self._seen[tenant_uuid] = now
        with Session(self.db.write) as s:
            s.exec(update(Tenant).where(Tenant.uuid == tenant_uuid).values(last_seen=now))
            s.commit()

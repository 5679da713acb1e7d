"""Requests: creation, listing, claims with leases, and every status change.

Each change runs in one transaction that locks the request row (``FOR
UPDATE`` on PostgreSQL; SQLite's write transactions are ``BEGIN
IMMEDIATE``) and makes the change through :mod:`.lifecycle`, which checks it
against the request's table, writes it and records its event. What a
principal may see is :mod:`.visibility`'s rule.
"""

from __future__ import annotations

import builtins
import json
import time
import uuid as uuidlib
from dataclasses import dataclass, replace
from functools import partial
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import Connection, bindparam, exists, literal, select, update
from sqlmodel import Session, col

from labweave.schemas.api import ClaimCreate, RequestCreate
from labweave.schemas.core import RequestStatus as S

from . import claim_gate, lifecycle
from .auth import Caller, Principal
from .convert import request_wire
from .db.driver import DriverQuery
from .db.engine import Database
from .db.group_commit import OneStatement
from .db.tables import Request, RequestMethod, Tenant, as_row, table_of
from .errors import Conflict, Forbidden, Invalid, NotFound
from .lifecycle import Actor, request_actors
from .lab_pause import LabPause, refuse_if_paused
from .registry import Registry, check_serving
from .visibility import Viewer

if TYPE_CHECKING:
    from .metrics import LabMetrics

CLAIM_BATCH = 4  # most claims take the first candidate; a deeper scan reads more per round
CLAIM_SCAN_BATCH = 64
CLAIM_SCAN_LIMIT = 1024

REQ = table_of(Request)
METHODS = table_of(RequestMethod)


#: Plans a status change of a locked request: ``(row, now) -> (new status, other columns, event data)``.
Plan = Callable[[Request, float], "tuple[S, dict[str, Any], dict[str, Any]]"]


@dataclass
class Policy:
    lease_seconds: float = 300.0
    max_attempts: int = 3
    max_lease_expiries: int = 3


def new_request(status: S, quantity: str, methods: list[str], parameters: dict, tenant_uuid: str, created_by: str,
                **extra: Any) -> dict[str, Any]:
    """The column values of a request about to be stored (``extra``: priority, campaign...)."""
    now = time.time()
    request_uuid = str(uuidlib.uuid4())
    values = dict(
        uuid=request_uuid, ctime=now, updated=now, status=status.value, quantity=quantity, methods=methods,
        parameters=parameters, tenant_uuid=tenant_uuid, priority=0, owner_tenant_uuid=None, last_owner_uuid=None,
        lease_expires=None, lease_seconds=None, lease_expiries=0, attempts=0, failure_reason=None,
        parent_uuid=None, campaign=None, provenance={}, created_by=created_by, lease_beat=0,
        wire=request_wire(request_uuid, now, quantity, methods, parameters, tenant_uuid),
    )
    values.update(extra)
    return values


def stored_body(wire: str) -> dict[str, Any]:
    """The body of a request (quantity, methods, parameters) from its stored wire text."""
    body: dict[str, Any] = json.loads(wire)["request"]
    return body


def is_tenant_user(p: Principal) -> bool:
    """Whether ``p`` acts as a tenant (claims, holds leases): a requester's account names a tenant too."""
    return p.role == "tenant" and bool(p.tenant_uuid)


def acting_tenant(p: Principal, refusal: str) -> str:
    """The tenant ``p`` acts for; 403 with ``refusal`` for anyone not a tenant's user (whatever the request)."""
    if not is_tenant_user(p) or p.tenant_uuid is None:
        raise Forbidden(refusal)
    return p.tenant_uuid


class _Stale(Exception):
    """A claim planned for a user whose role or tenant has changed: the claim starts again as ``principal``."""

    def __init__(self, principal: Principal):
        super().__init__(principal.username)
        self.principal = principal


LET_GO = {"owner_tenant_uuid": None, "lease_expires": None}  # the holder (if any) lets go of the lease


class Requests:
    def __init__(self, db: Database, registry: Registry, policy: Policy, pause: LabPause | None = None,
                 activity: LabMetrics | None = None):
        self.db = db
        self.registry = registry
        self.policy = policy
        self.pause = pause or LabPause(db)
        self.activity = activity
        self._seen: dict[str, float] = {}
        self._claim_statements: dict = {}

    # -- reading -----------------------------------------------------------
    def viewer(self, p: Principal) -> Viewer:
        return Viewer.of(p, self.registry.catalogue())

    def get(self, p: Principal, request_uuid: str) -> Request | None:
        """The request, if it exists and ``p`` may see it."""
        stmt = self.viewer(p).requests(select(REQ).where(REQ.c.uuid == request_uuid))
        with self.db.read.connect() as conn:
            found = conn.execute(stmt).mappings().first()
        return as_row(found, Request) if found is not None else None

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
    ) -> list[Request]:
        """A page of requests ``p`` sees, in creation order (FINALES2's listings: :meth:`wire_listing`)."""
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
        if created_by:
            stmt = stmt.where(c.created_by == created_by)
        stmt = self.viewer(p).requests(stmt)
        if after is not None:
            stmt = stmt.where(c.id > after)
        stmt = stmt.order_by(c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.db.read.connect() as conn:
            return [as_row(m, Request) for m in conn.execute(stmt).mappings()]

    def wire_listing(self, p: Principal, *, pending: bool, quantity: str | None = None,
                     method: str | None = None) -> builtins.list[tuple[str, str]]:
        """FINALES2's unpaged listings as ``(status, wire)`` rows (see ``convert.request_infos_json``).

        ``pending``: only pending requests, in queue order, and for a tenant only those its
        limitations admit. Only the columns sent are read (the info as stored text, nothing
        decoded); each tenant's verdicts are remembered by the catalogue, so a request is
        matched against the tenant's limitations once, not on every poll.
        """
        c = REQ.c
        tenant = p.tenant_uuid if pending and is_tenant_user(p) else None
        if tenant and self.pause.state().paused:  # FINALES2 tenants know no pause
            return []
        cat = self.registry.catalogue()
        stmt = select(c.uuid, c.status, c.wire, c.id)
        if pending:
            stmt = stmt.where(c.status == S.PENDING.value)
        if quantity:
            stmt = stmt.where(c.quantity == quantity)
        if method:
            stmt = stmt.where(exists().where(METHODS.c.request_id == c.id, METHODS.c.method == method))
        if tenant:  # what a tenant can serve lies in its line of work, which it sees: the check below is the rule
            stmt = stmt.where(c.quantity.in_(sorted(cat.tenant_offers(tenant))))
        else:
            stmt = Viewer.of(p, cat).requests(stmt)
        stmt = stmt.order_by(c.priority.desc(), c.id) if pending else stmt.order_by(c.id)
        with self.db.read.connect() as conn:
            rows: Any = conn.execute(stmt).all()
            unwritten = [r[3] for r in rows if r[2] is None]
            if unwritten:  # never so for rows written by this server or migrated; kept readable all the same
                wires = {r.id: request_wire(r.uuid, r.ctime, r.quantity, r.methods, r.parameters, r.tenant_uuid)
                         for r in conn.execute(select(REQ).where(c.id.in_(unwritten)))}
                rows = [r if r[2] is not None else (r[0], r[1], wires[r[3]], r[3]) for r in rows]
        if not tenant:
            return [(r[1], r[2]) for r in rows]
        # A tenant sees the pending requests its limitations admit: each verdict is reached once
        # (Catalogue.serves) and looked up on later polls; verdicts on requests no longer pending
        # are forgotten when the whole queue is listed.
        t = tenant
        known = cat.verdicts.get(t, {})
        kept: dict[str, bool] = {}
        out = []
        for u, status, wire, _ in rows:
            verdict = known.get(u)
            if verdict is None:
                verdict = cat.serves(t, u, partial(stored_body, wire))
            kept[u] = verdict
            if verdict:
                out.append((status, wire))
        if quantity is None and method is None:
            cat.verdicts[t] = kept
        return out

    # -- creating ----------------------------------------------------------
    def create(self, p: Principal, body: RequestCreate) -> Request:
        """Check and store a new request in a transaction of its own."""
        store = self.plan_create(p, body)
        with self.db.write.begin() as conn:
            return store(conn)

    def plan_create(self, p: Principal, body: RequestCreate) -> OneStatement[Request]:
        """Every check of a new request that needs no transaction; what stores it in a write transaction.

        The checks (tenant, rights, schema, limitations) raise here, before anything is written; the
        returned work reads only the parent request (if one is named) and writes the request's rows
        (:func:`.lifecycle.open_request`), so that on SQLite it can share a transaction with other
        creates, and on PostgreSQL, where it is one statement, run in autocommit (:mod:`.db.group_commit`).
        """
        cat = self.registry.catalogue()
        if body.tenant_uuid not in cat.tenants:
            raise Invalid(f"tenant_uuid: unknown tenant {body.tenant_uuid!r}")
        if p.tenant_uuid and not p.is_operator and body.tenant_uuid != p.tenant_uuid:
            raise Forbidden(f"tenant_uuid: you act for tenant {p.tenant_uuid}, not {body.tenant_uuid}")
        self.registry.check_request(body.quantity, body.methods, body.parameters)
        status = S.PROPOSED if body.proposed else S.PENDING
        values = new_request(status, body.quantity, body.methods, body.parameters, body.tenant_uuid, p.username,
                             priority=body.priority, parent_uuid=body.parent_uuid, campaign=body.campaign,
                             provenance=body.provenance)
        actors = request_actors(p, None, cat)

        def store(conn: Connection) -> Request:
            row = dict(values)
            row["id"] = lifecycle.open_request(conn, row, actors, p.username,
                                               data={"quantity": body.quantity, "methods": body.methods})
            return as_row(row, Request)

        return OneStatement(store)

    # -- changing status ---------------------------------------------------
    def _locked(self, conn, p: Principal, request_uuid: str) -> Request:
        """The request, locked for this transaction; 404 if it does not exist or ``p`` may not see it."""
        stmt = self.viewer(p).requests(select(REQ).where(REQ.c.uuid == request_uuid))
        if self.db.is_postgres:
            stmt = stmt.with_for_update(of=REQ)
        found = conn.execute(stmt).mappings().first()
        if found is None:
            raise NotFound(f"request {request_uuid} not found")
        return as_row(found, Request)

    def transition(self, p: Principal, request_uuid: str, new: S, message: str = "") -> Request:
        """The FINALES2 ``update_status`` route: pending, reserved or retracted."""
        if new == S.RESERVED:
            return self.reserve(p, request_uuid, None)
        if new == S.PENDING:
            with self.db.read.connect() as conn:
                current = conn.execute(select(REQ.c.status).where(REQ.c.uuid == request_uuid)).scalar()
            if current == S.PROPOSED:
                return self.approve(p, request_uuid, message)
            return self.release(p, request_uuid, message or "released")
        if new == S.RETRACTED:
            return self.cancel(p, request_uuid, message or "retracted")
        raise Invalid(f"new_status: {new.value} cannot be set directly; use pending, reserved or retracted")

    def _change(self, p: Principal, request_uuid: str, plan: Plan, message: str) -> Request:
        """Lock the request, plan its change and make it through the lifecycle, in one transaction."""
        cat = self.registry.catalogue()
        now = time.time()
        with self.db.write.begin() as conn:
            row = self._locked(conn, p, request_uuid)
            new, changes, data = plan(row, now)
            return lifecycle.move_request(conn, row, new, request_actors(p, row, cat), p.username, message,
                                          now=now, data=data, **changes)

    @staticmethod
    def _to(new: S, **changes: Any) -> Plan:
        return lambda row, now: (new, changes, {})

    def reserve(self, p: Principal, request_uuid: str, lease_seconds: float | None) -> Request:
        tenant = acting_tenant(p, "only a tenant user can reserve a request (log in as the tenant's user)")
        self.registry.serving_tenant(tenant)
        self.pause.refuse_if_paused()
        lease = lease_seconds or self.policy.lease_seconds

        def grant(row, now: float):
            return S.RESERVED, {"owner_tenant_uuid": p.tenant_uuid, "last_owner_uuid": p.tenant_uuid,
                                "lease_seconds": lease, "lease_expires": now + lease,
                                "lease_beat": row.lease_beat + 1}, {}

        return self._taken(self._change(p, request_uuid, grant, f"reserved by tenant {p.tenant_uuid}"))

    def release(self, p: Principal, request_uuid: str, reason: str) -> Request:
        return self._change(p, request_uuid, self._to(S.PENDING, **LET_GO), reason)

    def cancel(self, p: Principal, request_uuid: str, reason: str) -> Request:
        return self._change(p, request_uuid, self._to(S.RETRACTED, **LET_GO), reason)

    def approve(self, p: Principal, request_uuid: str, message: str = "") -> Request:
        return self._change(p, request_uuid, self._to(S.PENDING), message or "approved")

    def fail(self, p: Principal, request_uuid: str, reason: str, retryable: bool) -> Request:
        """A failed attempt: a retryable failure of a reserved request counts an attempt and queues it
        again (until ``max_attempts``); any other failure is final."""

        def plan(row, now: float):
            attempts = row.attempts
            new = S.FAILED
            if retryable and row.status == S.RESERVED:
                attempts += 1
                if attempts < self.policy.max_attempts:
                    new = S.PENDING
            changes = dict(LET_GO, failure_reason=reason, attempts=attempts)
            return new, changes, {"retryable": retryable, "attempts": attempts}

        note = f"{'retryable' if retryable else 'final'} failure: {reason}"
        return self._change(p, request_uuid, plan, note)

    def heartbeat(self, p: Principal, request_uuid: str, lease_seconds: float | None = None) -> Request:
        """Extend the lease of a request the principal's tenant holds (no change of status).

        A tenant stopped or deactivated by an operator cannot: the 409 tells its
        runtime the lease is lost, so it stops the job.
        """
        tenant = acting_tenant(p, "only the tenant holding a request's lease can heartbeat it")
        self.registry.serving_tenant(tenant)
        now = time.time()
        with self.db.write.begin() as conn:
            row = self._locked(conn, p, request_uuid)
            # a tenant that does not hold it may have lost it (expired, taken by another): its runtime stops
            if row.status != S.RESERVED or row.owner_tenant_uuid != p.tenant_uuid:
                if self.activity is not None:
                    self.activity.heartbeat(extended=False)
                raise Conflict(f"request {request_uuid} is not held by your tenant: the lease is lost")
            lease = lease_seconds or row.lease_seconds or self.policy.lease_seconds
            conn.execute(update(REQ).where(REQ.c.id == row.id)  # the beat the lease sweeper watches
                         .values(lease_seconds=lease, lease_expires=now + lease, updated=now,
                                 lease_beat=REQ.c.lease_beat + 1))
        row.lease_seconds, row.lease_expires, row.updated = lease, now + lease, now
        if self.activity is not None:
            self.activity.heartbeat(extended=True)
        self.touch(tenant)
        return row

    # -- claims ------------------------------------------------------------
    def claim(self, who: Principal | Caller, body: ClaimCreate) -> Request | None:
        """Atomically take the next request this tenant can serve, by priority then age.

        ``who``: a :class:`.auth.Caller` (a route's caller, whose user's row the claim reads and judges
        in its first statement) or an already verified principal.
        """
        for _ in range(3):
            try:
                row = self._claim(who, body)
            except _Stale as stale:  # the user's role or tenant changed since this process last read it
                assert isinstance(who, Caller)
                who = replace(who, principal=stale.principal)
                continue
            return self._taken(row) if row is not None else None
        raise Conflict("your account changed while claiming; try again")

    def _taken(self, row: Request) -> Request:
        """Count a request a tenant took (claimed or reserved, its transaction committed) and how long it waited."""
        if self.activity is not None:
            self.activity.claimed(row.quantity, (row.updated or row.ctime) - row.ctime)
        return row

    def _claim(self, who: Principal | Caller, body: ClaimCreate) -> Request | None:
        p = who.principal if isinstance(who, Caller) else who
        tenant = acting_tenant(p, "claims are made by a tenant user")
        self.touch(tenant)  # whether it may claim is the gate's (its row as of this claim, not as cached)
        cat = self.registry.catalogue()
        offers = cat.tenant_offers(tenant)
        if body.quantity:
            offers = {body.quantity: offers.get(body.quantity, [])}
        if body.methods:
            offers = {q: [m for m in ms if m in body.methods] for q, ms in offers.items()}
        wanted = [(q, tuple(ms)) for q, ms in offers.items() if ms]
        lease = body.lease_seconds or self.policy.lease_seconds
        skip: list[int] = []
        scanned = 0
        first = True
        while scanned < CLAIM_SCAN_LIMIT:
            with self.db.writing() as conn:
                candidates: list[Any] = []
                if first:  # the gate's checks, read with the first quantity's candidates
                    first = False
                    query, params = self._gated(wanted[0] if wanted else None)
                    rows = query.rows(conn, params | claim_gate.params(p.username, tenant))
                    self._pass(claim_gate.Gate(rows[0]), who, p, tenant)
                    if wanted:
                        candidates += [r for r in rows if r.id is not None]
                    rest = wanted[1:]
                else:
                    rest = wanted
                for q, ms in rest:  # one indexed walk per quantity, merged by priority then age
                    stmt = self._candidates(ms, bool(skip))
                    params = {"b_quantity": q} | ({"b_skip": skip} if skip else {})
                    candidates += conn.execute(stmt, params).all()
                if not candidates:
                    return None
                candidates.sort(key=lambda r: (-r.priority, r.id))
                for cand in candidates:
                    scanned += 1
                    if not cat.can_serve(tenant, cand.quantity, cand.methods, cand.parameters):
                        skip.append(cand.id)
                        continue
                    now = time.time()
                    pending = SimpleNamespace(id=cand.id, uuid=cand.uuid, status=S.PENDING.value,
                                              campaign=cand.campaign)
                    try:  # the tenant can serve it (just checked): the lifecycle's TENANT
                        return lifecycle.move_request(
                            conn, pending, S.RESERVED, {Actor.TENANT}, p.username,
                            f"claimed by tenant {tenant}", now=now,
                            data={"tenant_uuid": tenant, "lease_seconds": lease},
                            owner_tenant_uuid=tenant, last_owner_uuid=tenant,
                            lease_seconds=lease, lease_expires=now + lease, lease_beat=cand.lease_beat + 1)
                    except lifecycle.Moved:
                        continue  # another claimer won this one
        return None

    def _pass(self, gate: claim_gate.Gate, who: Principal | Caller, p: Principal, tenant: str) -> None:
        """Let the claim through the gate, or raise: the user (401), its tenant (403, 409), the lab's pause (409).

        A claim that began before a pause may still finish (it read the pause first)."""
        if isinstance(who, Caller):
            now = who.confirm(gate.account())
            if now != p:
                raise _Stale(now)
        check_serving(tenant, gate.tenant())
        refuse_if_paused(gate.lab())

    def _gated(self, wanted: tuple[str, tuple[str, ...]] | None) -> tuple[DriverQuery, dict[str, Any]]:
        """The gate's query, with the first batch of candidates of one quantity (if any) and its parameters."""
        if wanted is None:
            query = self._claim_statements.get("gate")
            if query is None:
                query = self._claim_statements["gate"] = DriverQuery(claim_gate.gated())
            return query, {}
        quantity, methods = wanted
        key = ("gate", methods)
        query = self._claim_statements.get(key)
        if query is None:
            query = self._claim_statements[key] = DriverQuery(claim_gate.gated(self._candidates(methods, False)))
        return query, {"b_quantity": quantity}

    def _candidates(self, methods: tuple[str, ...], scanning: bool):
        """The claim query for one quantity (``b_quantity``), built once per (methods, scanning) and reused."""
        key = (methods, scanning)
        stmt = self._claim_statements.get(key)
        if stmt is None:
            c = REQ.c
            stmt = (
                select(c.id, c.uuid, c.priority, c.quantity, c.methods, c.parameters, c.lease_beat, c.campaign)
                .where(c.status == S.PENDING.value, c.quantity == bindparam("b_quantity"))
                # the methods as plain values, not an expanding IN: the statement is compiled once (DriverQuery)
                .where(exists().where(METHODS.c.request_id == c.id,
                                      METHODS.c.method.in_([literal(m) for m in methods])))
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
            s.execute(update(Tenant).where(col(Tenant.uuid) == tenant_uuid).values(last_seen=now))
            s.commit()

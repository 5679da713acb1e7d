"""Results: posting (idempotent), unsolicited results, reading, status changes.

A result resolves its request in the same transaction. The database keeps
at most one live original result per request (a partial unique index), so
no race can store two; a repeated post, by the same ``Idempotency-Key`` or
as the same data from the same tenant, returns the result already stored.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from labweave.schemas.core import RequestStatus as S
from labweave.schemas.core import Result as ResultBody
from labweave.schemas.core import ResultStatus

from . import lifecycle
from .auth import Principal
from .db.engine import Database
from .db.tables import Request, Result, as_row, table_of
from .errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from .events import record
from .lifecycle import Actor, request_actors, result_actors
from .registry import Registry
from .requests import LET_GO, REQ, is_tenant_user, new_request
from .visibility import Viewer

if TYPE_CHECKING:
    from .metrics import LabMetrics

RES = table_of(Result)
#: The short reason a refused result is counted under, by the error refusing it.
REFUSALS: dict[type[ServiceError], str] = {Invalid: "invalid", Forbidden: "forbidden", NotFound: "not_found",
                                           Conflict: "conflict"}
INSERT_RESULT = insert(RES).returning(RES.c.id)


def new_result(body: ResultBody, method: str, request_uuid: str, posted_by: str, now: float,
               idempotency_key: str | None = None) -> dict[str, Any]:
    """The column values of a new original result answering ``request_uuid``."""
    return dict(
        uuid=str(uuidlib.uuid4()),
        ctime=now,
        status=ResultStatus.ORIGINAL.value,
        request_uuid=request_uuid,
        quantity=body.quantity,
        method=method,
        parameters=body.parameters[method],
        data=body.data,
        tenant_uuid=body.tenant_uuid,
        idempotency_key=idempotency_key,
        posted_by=posted_by,
    )

class Results:
    def __init__(self, db: Database, registry: Registry, activity: LabMetrics | None = None):
        self.db = db
        self.registry = registry
        self.activity = activity

    def _refused(self, exc: ServiceError) -> None:
        """Count a result refused, by its HTTP status and the error's kind (``conflict``, ``invalid``...)."""
        if self.activity is not None:
            reason = next((r for kind, r in REFUSALS.items() if isinstance(exc, kind)), "other")
            self.activity.result_refused(exc.status_code, reason)

    def _check_body(self, p: Principal, body: ResultBody) -> str:
        method = body.method[0]
        cat = self.registry.catalogue()
        if body.tenant_uuid not in cat.tenants:
            raise Invalid(f"tenant_uuid: unknown tenant {body.tenant_uuid!r}")
        if not p.is_operator and body.tenant_uuid != p.tenant_uuid:
            raise Forbidden(f"tenant_uuid: you act for tenant {p.tenant_uuid}, not {body.tenant_uuid}")
        cat.capability(body.quantity, method)
        self.registry.check_result(body.quantity, method, body.data)
        return method

    def post(self, p: Principal, body: ResultBody, idempotency_key: str | None = None) -> tuple[Result, bool]:
        """Store a result for a request and resolve it, in a transaction of its own.

        Returns:
            The stored result and whether it was created now (False: a repeat).
        """
        store = self.plan_post(p, body, idempotency_key)
        with self.db.write.begin() as conn:
            return store(conn)

    def plan_post(self, p: Principal, body: ResultBody,
                  idempotency_key: str | None = None) -> Callable[[Connection], tuple[Result, bool]]:
        """The checks of a result that need no transaction; what stores it (and resolves its request) in a write
        transaction, which it may share with other writes (:mod:`.db.group_commit`). A refusal is counted either
        way (``labweave_results_refused``)."""
        try:
            store = self._plan_post(p, body, idempotency_key)
        except ServiceError as exc:
            self._refused(exc)
            raise

        def counted(conn: Connection) -> tuple[Result, bool]:
            try:
                return store(conn)
            except ServiceError as exc:
                self._refused(exc)
                raise

        return counted

    def _plan_post(self, p: Principal, body: ResultBody,
                   idempotency_key: str | None) -> Callable[[Connection], tuple[Result, bool]]:
        if not p.is_operator and not is_tenant_user(p):
            raise Forbidden("a result is posted by the user of the tenant that holds the request")
        method = self._check_body(p, body)
        if idempotency_key:
            with Session(self.db.read) as s:
                earlier = s.exec(select(Result).where(Result.idempotency_key == idempotency_key)).first()
            if earlier is not None:
                # keys belong to the tenant that used them: another's key is never answered with its result
                if earlier.tenant_uuid != body.tenant_uuid:
                    raise Conflict(f"Idempotency-Key {idempotency_key!r} is taken; use keys of your own")
                if earlier.request_uuid != body.request_uuid:
                    raise Conflict(f"Idempotency-Key {idempotency_key!r} was used for another request")
                acknowledged = earlier
                return lambda conn: (acknowledged, False)  # acknowledged again, even after a stop
        if p.tenant_uuid and not p.is_operator:
            self.registry.serving_tenant(p.tenant_uuid)  # a stopped or deactivated tenant posts nothing new
        cat = self.registry.catalogue()
        R = RES

        def store(conn: Connection) -> tuple[Result, bool]:
            now = time.time()
            # a request the poster may not see is not found, as on every route (visibility.py)
            stmt = self.viewer(p).requests(core_select(REQ).where(REQ.c.uuid == body.request_uuid))
            if self.db.is_postgres:
                stmt = stmt.with_for_update(of=REQ)
            found = conn.execute(stmt).mappings().first()
            if found is None:
                raise NotFound(f"request_uuid: request {body.request_uuid!r} not found")
            req = as_row(found, Request)
            if req.quantity != body.quantity:
                raise Invalid(f"quantity: the request is for {req.quantity!r}, not {body.quantity!r}")
            if method not in req.methods:
                raise Invalid(f"method: the request names {req.methods}, not {method!r}")
            if req.status == S.RESOLVED:
                existing = conn.execute(
                    core_select(R).where(R.c.request_uuid == req.uuid, R.c.status == ResultStatus.ORIGINAL.value)
                ).mappings().first()
                if existing is not None and existing["tenant_uuid"] == body.tenant_uuid and existing["data"] == body.data:
                    return as_row(existing, Result), False
                raise Conflict(f"request {req.uuid} is already resolved; a resolved request stays resolved")
            actors = request_actors(p, req, cat)
            lifecycle.REQUEST.check(req.status, S.RESOLVED, actors, req.uuid)  # before anything is stored
            values = new_result(body, method, req.uuid, p.username, now, idempotency_key)
            try:
                values["id"] = conn.execute(INSERT_RESULT, values).scalar_one()
            except IntegrityError:
                raise Conflict(f"request {req.uuid} already has a result (or the Idempotency-Key was used)") from None
            lifecycle.move_request(conn, req, S.RESOLVED, actors, p.username, f"resolved by result {values['uuid']}",
                                   now=now, data={"result_uuid": values["uuid"]}, **LET_GO)
            record(conn, "result.posted", values["uuid"], p.username, to_status=values["status"], now=now,
                   data={"request_uuid": req.uuid, "quantity": body.quantity, "method": method})
            return as_row(values, Result), True

        return store

    def post_unsolicited(self, p: Principal, body: ResultBody) -> Result:
        """A result nobody asked for: a synthetic ``unsolicited`` request carries it."""
        try:
            return self._post_unsolicited(p, body)
        except ServiceError as exc:
            self._refused(exc)
            raise

    def _post_unsolicited(self, p: Principal, body: ResultBody) -> Result:
        if not p.is_operator and not is_tenant_user(p):
            raise Forbidden("results are posted by a tenant's user")
        method = self._check_body(p, body)
        if p.tenant_uuid and not p.is_operator:
            self.registry.serving_tenant(p.tenant_uuid)
        cat = self.registry.catalogue()
        # whoever acts for the result's tenant (checked above) posts as that tenant
        actors = request_actors(p, None, cat) | ({Actor.TENANT} if is_tenant_user(p) else set())
        req = new_request(S.UNSOLICITED, body.quantity, [method], {method: body.parameters[method]},
                          body.tenant_uuid, p.username)
        values = new_result(body, method, req["uuid"], p.username, req["ctime"])
        with self.db.write.begin() as conn:
            req["id"] = lifecycle.open_request(conn, req, actors, p.username, "unsolicited result")
            values["id"] = conn.execute(INSERT_RESULT, values).scalar_one()
            record(conn, "result.posted", values["uuid"], p.username, to_status=values["status"], now=values["ctime"],
                   data={"request_uuid": req["uuid"], "quantity": body.quantity, "method": method})
        return as_row(values, Result)

    def viewer(self, p: Principal) -> Viewer:
        return Viewer.of(p, self.registry.catalogue())

    def get(self, p: Principal, result_uuid: str) -> Result | None:
        """The result, if it exists and ``p`` sees its request."""
        with Session(self.db.read) as s:
            return s.exec(self.viewer(p).results(select(Result).where(Result.uuid == result_uuid))).first()

    def for_request(self, p: Principal, request_uuid: str) -> Result | None:
        """The live result answering a request: the original, else the newest amendment."""
        with Session(self.db.read) as s:
            if s.exec(self.viewer(p).requests(select(REQ.c.id).where(REQ.c.uuid == request_uuid))).first() is None:
                return None
            rows = list(
                s.exec(
                    select(Result)
                    .where(Result.request_uuid == request_uuid, Result.status != ResultStatus.DELETED.value)
                    .order_by(col(Result.id))
                )
            )
        originals = [r for r in rows if r.status == ResultStatus.ORIGINAL]
        return originals[0] if originals else (rows[-1] if rows else None)

    def list(
        self,
        p: Principal,
        *,
        quantity: str | None = None,
        method: str | None = None,
        request_uuid: str | None = None,
        campaign: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[Result]:
        stmt = select(Result).where(Result.status != ResultStatus.DELETED.value)
        if quantity:
            stmt = stmt.where(Result.quantity == quantity)
        if method:
            stmt = stmt.where(Result.method == method)
        if request_uuid:
            stmt = stmt.where(Result.request_uuid == request_uuid)
        if campaign:
            stmt = stmt.where(col(Result.request_uuid).in_(core_select(REQ.c.uuid).where(REQ.c.campaign == campaign)))
        stmt = self.viewer(p).results(stmt)
        if after is not None:
            stmt = stmt.where(col(Result.id) > after)
        stmt = stmt.order_by(col(Result.id))
        if limit is not None:
            stmt = stmt.limit(limit)
        with Session(self.db.read) as s:
            return list(s.exec(stmt))

    def set_status(self, p: Principal, result_uuid: str, new: ResultStatus, message: str) -> Result:
        """Mark a result amended or deleted, through the result lifecycle."""
        with Session(self.db.write) as s:
            stmt = self.viewer(p).results(select(Result).where(Result.uuid == result_uuid))
            row = s.exec(stmt.with_for_update(of=Result) if self.db.is_postgres else stmt).first()
            if row is None:
                raise NotFound(f"result {result_uuid} not found")
            lifecycle.move_result(s, row, new, result_actors(p, row), p.username, message)
            s.commit()
            s.refresh(row)
        return row

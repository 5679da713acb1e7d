"""``/api/v1/`` requests: create, list (filtered, paged), claim with a lease, lifecycle."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlmodel import Session

from labweave.schemas.api import (Cancel, Claim, ClaimCreate, Event, Failure, Lease, Release, RequestCreate,
                                  RequestDetail, RequestPage)

from .. import convert
from ..db.on_loop import run_write
from ..deps import CurrentCaller, CurrentOperator, CurrentUser, LabDep
from ..events import history
from .params import Cursor, LeaseSeconds, Limit

router = APIRouter(prefix="/api/v1", tags=["requests"])


def next_cursor(rows: Sequence[Any], limit: int) -> int | None:
    """The cursor of the page after ``rows`` (the last row's id), or None when this page was the last."""
    return rows[-1].id if len(rows) == limit else None


@router.post("/requests", status_code=201)
async def create_request(lab: LabDep, p: CurrentUser, body: RequestCreate) -> RequestDetail:
    return convert.request_detail(await lab.writes.run(partial(lab.requests.plan_create, p, body)))


@router.get("/requests")
def list_requests(
    lab: LabDep,
    p: CurrentUser,
    status: Annotated[list[str] | None, Query()] = None,
    quantity: str | None = None,
    method: str | None = None,
    campaign: str | None = None,
    owner: str | None = None,
    parent: str | None = None,
    created_by: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> RequestPage:
    """A page of requests in creation order; ``next_cursor`` fetches the next one."""
    rows = lab.requests.list(p, status=status, quantity=quantity, method=method, campaign=campaign, owner=owner,
                             parent=parent, created_by=created_by, after=cursor, limit=limit)
    return RequestPage(items=[convert.request_detail(r) for r in rows], next_cursor=next_cursor(rows, limit))


@router.get("/requests/{request_uuid}")
def get_request(lab: LabDep, p: CurrentUser, request_uuid: str) -> RequestDetail:
    return convert.request_detail(lab.requests.require(p, request_uuid))


@router.get("/requests/{request_uuid}/history")
def request_history(lab: LabDep, p: CurrentUser, request_uuid: str) -> list[Event]:
    """Every status change of the request: who, when, from, to, why."""
    lab.requests.require(p, request_uuid)
    with Session(lab.db.read) as s:
        return [convert.event(e) for e in history(s, request_uuid)]


@router.post("/claims", response_model=Claim, responses={204: {"description": "Nothing this tenant can serve"}})
async def claim(lab: LabDep, caller: CurrentCaller, body: ClaimCreate) -> Claim | Response:
    """Take the next request this tenant can serve (priority, then age); 204 if none."""
    row = await run_write(lab.db, partial(lab.requests.claim, caller, body))
    if row is None:
        return Response(status_code=204)
    return Claim(request=convert.request_detail(row), lease=convert.lease(row))


@router.post("/requests/{request_uuid}/heartbeat")
def heartbeat(lab: LabDep, p: CurrentUser, request_uuid: str, lease_seconds: LeaseSeconds = None) -> Lease:
    """Extend the lease of a request this tenant holds; 409 once the lease is lost."""
    return convert.lease(lab.requests.heartbeat(p, request_uuid, lease_seconds))


@router.post("/requests/{request_uuid}/release")
def release(lab: LabDep, p: CurrentUser, request_uuid: str, body: Release | None = None) -> RequestDetail:
    reason = body.reason if body else "released by its tenant"
    return convert.request_detail(lab.requests.release(p, request_uuid, reason))


@router.post("/requests/{request_uuid}/fail")
def fail(lab: LabDep, p: CurrentUser, request_uuid: str, body: Failure) -> RequestDetail:
    return convert.request_detail(lab.requests.fail(p, request_uuid, body.reason, body.retryable))


@router.post("/requests/{request_uuid}/cancel")
def cancel(lab: LabDep, p: CurrentUser, request_uuid: str, body: Cancel | None = None) -> RequestDetail:
    return convert.request_detail(lab.requests.cancel(p, request_uuid, body.reason if body else "cancelled"))


@router.post("/requests/{request_uuid}/approve")
def approve(lab: LabDep, p: CurrentOperator, request_uuid: str) -> RequestDetail:
    """An operator approves a proposed request: it joins the queue."""
    return convert.request_detail(lab.requests.approve(p, request_uuid))


@router.post("/requests/{request_uuid}/reject")
def reject(lab: LabDep, p: CurrentOperator, request_uuid: str, body: Cancel | None = None) -> RequestDetail:
    return convert.request_detail(lab.requests.cancel(p, request_uuid, body.reason if body else "rejected"))

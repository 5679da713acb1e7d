"""The operator's controls: approve or reject proposals, retract requests, pause and resume campaigns,
stop and resume tenants, pause and resume the whole lab.

Each control is a ``POST`` of a small form. The page's script sends it with
``Accept: application/json`` and shows the answer; without the script the
browser follows a redirect back to the page, which shows the answer once.
Every change goes through the same service methods as the JSON API, so the
server refuses what the user may not do whatever the page shows: the
templates hide controls by role only for clarity (:class:`Controls`).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Callable
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from labweave.schemas.api import ActionOutcome
from labweave.schemas.core import RequestStatus as S

from ..auth import Principal
from ..errors import Conflict, Forbidden, ServiceError
from . import session

log = logging.getLogger(__name__)

Reason = Annotated[str, Form(max_length=2000)]


class Controls:
    """Which controls a user is shown (the services decide what is allowed)."""

    def __init__(self, user: Principal):
        self.user = user

    @property
    def operate(self) -> bool:
        """Approve and reject proposals, stop and resume tenants: operators only."""
        return self.user.is_operator

    def retract(self, row) -> bool:
        """Retract a request still in the queue: an operator, or who posted it."""
        if row.status not in (S.PENDING.value, S.RESERVED.value, S.PROPOSED.value):
            return False
        return self.user.is_operator or (self.user.role != "tenant" and row.created_by == self.user.username)

    def steer(self, campaign) -> bool:
        """Pause and resume a campaign: an operator, or who created it."""
        return self.user.is_operator or (bool(campaign.created_by) and campaign.created_by == self.user.username)


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def action_user(request: Request) -> Principal:
    """The user of a control: 401 for the script, the login page for a plain form."""
    p = session.principal_of(request)
    if p is None:
        if wants_json(request):
            raise HTTPException(status_code=401, detail="log in first")
        raise HTTPException(status_code=303, detail="log in first",
                            headers={"Location": f"{session.PREFIX}/login"})
    return p


ActionUser = Annotated[Principal, Depends(action_user)]

router = APIRouter(prefix="/actions", dependencies=[session.SameOrigin])

#: Every control answers its outcome as JSON to the page's script (a refusal with its 4xx), else this.
BACK_TO_PAGE: dict[int | str, dict[str, Any]] = {
    303: {"description": "Without the script: back to the page, which shows the outcome"}}


def _back(request: Request) -> str:
    """The page the control was used on (same site only), to return to without the script."""
    referer = request.headers.get("referer", "")
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.headers.get("host", ""):
        return session.PREFIX
    return session.safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))


def _act(request: Request, user: Principal, what: str, change: Callable[[], str]) -> Response:
    try:
        message, ok, status = change(), True, 200
    except ServiceError as exc:
        message, ok, status = exc.message, False, exc.status_code
    log.info("dashboard: %s %s by %s: %s", what, "done" if ok else "refused", user.username, message)
    if wants_json(request):
        return JSONResponse(ActionOutcome(ok=ok, message=message).model_dump(mode="json"), status_code=status)
    response = RedirectResponse(_back(request), status_code=303)
    session.flash(response, request, message, "info" if ok else "error")
    return response


def _operator(user: Principal) -> None:
    if not user.is_operator:
        raise Forbidden("this needs an operator")


@router.post("/requests/{request_uuid}/approve", response_model=ActionOutcome, responses=BACK_TO_PAGE)
def approve(request: Request, user: ActionUser, request_uuid: str) -> Response:
    def change() -> str:
        _operator(user)
        request.app.state.lab.requests.approve(user, request_uuid, f"approved on the dashboard by {user.username}")
        return f"Request {request_uuid[:8]} approved: it joins the queue."

    return _act(request, user, f"approve {request_uuid}", change)


@router.post("/requests/{request_uuid}/reject", response_model=ActionOutcome, responses=BACK_TO_PAGE)
def reject(request: Request, user: ActionUser, request_uuid: str, reason: Reason = "") -> Response:
    def change() -> str:
        _operator(user)
        row = request.app.state.lab.requests.require(user, request_uuid)
        if row.status != S.PROPOSED.value:
            raise Conflict(f"request {request_uuid[:8]} is {row.status}, not a proposal; retract it instead")
        request.app.state.lab.requests.cancel(user, request_uuid, reason.strip() or f"rejected by {user.username}")
        return f"Proposal {request_uuid[:8]} rejected."

    return _act(request, user, f"reject {request_uuid}", change)


@router.post("/requests/{request_uuid}/retract", response_model=ActionOutcome, responses=BACK_TO_PAGE)
def retract(request: Request, user: ActionUser, request_uuid: str, reason: Reason = "") -> Response:
    def change() -> str:
        request.app.state.lab.requests.cancel(user, request_uuid, reason.strip() or f"retracted by {user.username}")
        return f"Request {request_uuid[:8]} retracted."

    return _act(request, user, f"retract {request_uuid}", change)


@router.post("/campaigns/{name}/pause", response_model=ActionOutcome, responses=BACK_TO_PAGE)
def pause(request: Request, user: ActionUser, name: str) -> Response:
    def change() -> str:
        request.app.state.lab.campaigns.set_status(user, name, "paused", f"paused on the dashboard by {user.username}")
        return f"Campaign {name} paused: the optimizer proposes nothing until it is resumed."

    return _act(request, user, f"pause campaign {name}", change)


@router.post("/campaigns/{name}/resume", response_model=ActionOutcome, responses=BACK_TO_PAGE)
def resume(request: Request, user: ActionUser, name: str) -> Response:
    def change() -> str:
        request.app.state.lab.campaigns.set_status(user, name, "running",
                                                  f"resumed on the dashboard by {user.username}")
        return f"Campaign {name} resumed."

    return _act(request, user, f"resume campaign {name}", change)


@router.post("/tenants/{tenant_uuid}/stop", response_model=ActionOutcome, responses=BACK_TO_PAGE)
def stop_tenant(request: Request, user: ActionUser, tenant_uuid: str) -> Response:
    def change() -> str:
        _operator(user)
        row = request.app.state.lab.registry.request_stop(tenant_uuid, user.username)
        return f"Tenant {row.name} asked to stop: its instruments go to their safe state, its work fails (retryable) and it claims nothing until resumed."

    return _act(request, user, f"stop tenant {tenant_uuid}", change)


@router.post("/tenants/{tenant_uuid}/resume", response_model=ActionOutcome, responses=BACK_TO_PAGE)
def resume_tenant(request: Request, user: ActionUser, tenant_uuid: str) -> Response:
    def change() -> str:
        _operator(user)
        row = request.app.state.lab.registry.clear_stop(tenant_uuid, user.username)
        return f"Tenant {row.name} may claim work again."

    return _act(request, user, f"resume tenant {tenant_uuid}", change)


@router.post("/lab/pause", response_model=ActionOutcome, responses=BACK_TO_PAGE)
def pause_lab(request: Request, user: ActionUser, reason: Reason = "",
              release_running: Annotated[bool, Form()] = False) -> Response:
    def change() -> str:
        _operator(user)
        _, released = request.app.state.lab.pause.pause(user, release_running, reason.strip())
        if release_running:
            return f"Lab paused: tenants claim nothing; {released} running request(s) went back to the queue."
        return "Lab paused: tenants claim nothing; the work running now finishes."

    return _act(request, user, "pause the lab", change)


@router.post("/lab/resume", response_model=ActionOutcome, responses=BACK_TO_PAGE)
def resume_lab(request: Request, user: ActionUser, reason: Reason = "") -> Response:
    def change() -> str:
        _operator(user)
        request.app.state.lab.pause.resume(user, reason.strip())
        return "Lab resumed: tenants claim again."

    return _act(request, user, "resume the lab", change)

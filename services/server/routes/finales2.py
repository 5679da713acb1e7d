"""FINALES2 v1.1.0's routes: same paths, verbs, bodies and answers.

Behaviour differs where FINALES2 is unsafe (see ``shared/finales2/API.md``):
reservations are atomic and owned, limitations are enforced, schemas are
checked, and bad input gets a 4xx that names the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Response
from fastapi import Request as HTTPRequest

from labweave.schemas.api import RequestCreate
from labweave.schemas.capability import CapabilityPublic, CapabilityTemplate
from labweave.schemas.core import AccessToken, Request, RequestInfo, RequestStatus, Result, ResultInfo, ResultStatus
from labweave.schemas.tenant import MergedLimitation, TenantInfo

from .. import convert
from ..deps import CurrentUser, LabDep
from ..lab import Lab
from ..login_throttle import TooManyAttempts
from ..registry import Catalogue, CapabilityView
from ..templates import template

router = APIRouter(tags=["FINALES2"])


@router.post("/user_management/authenticate")
@router.post("/user_management/authenticate/", include_in_schema=False)
def authenticate(
    http: HTTPRequest,
    lab: LabDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    grant_type: Annotated[str | None, Form()] = None,
    scope: Annotated[str, Form()] = "",
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
) -> AccessToken:
    """OAuth2 password login; the token is reused until it expires. Too many failures: 429 with Retry-After."""
    try:
        token = lab.auth.login(username, password, http.client.host if http.client else None)
    except TooManyAttempts as exc:
        raise HTTPException(429, exc.message, headers={"Retry-After": str(exc.retry_after)}) from None
    return AccessToken(access_token=token, token_type="bearer")


@router.post("/requests/")
async def post_request(lab: LabDep, p: CurrentUser, request: Request) -> str:
    """Post a request; answers its UUID."""
    body = RequestCreate.model_construct(**dict(request), priority=0, parent_uuid=None, campaign=None,
                                         provenance={}, proposed=False)
    row = await lab.writes.run(partial(lab.requests.plan_create, p, body))
    return row.uuid


@router.get("/requests/{object_id}")
def get_request(lab: LabDep, p: CurrentUser, object_id: str) -> RequestInfo | None:
    """The request, or ``null`` for an unknown id (as FINALES2)."""
    row = lab.requests.get(p, object_id)
    return convert.request_info(row) if row else None


# The two listings FINALES2 cannot page answer JSON assembled from each request's stored text
# (``convert.request_infos_json``); ``response_model`` still publishes their shape.
@router.get("/pending_requests/", response_model=list[RequestInfo])
def pending_requests(
    lab: LabDep, p: CurrentUser, quantity: str | None = None, method: str | None = None
) -> Response:
    """Pending requests; a tenant sees only those it can serve within its limitations."""
    rows = lab.requests.wire_listing(p, pending=True, quantity=quantity, method=method)
    return Response(convert.request_infos_json(rows), media_type="application/json")


@router.get("/all_requests/", response_model=list[RequestInfo])
def all_requests(lab: LabDep, p: CurrentUser) -> Response:
    return Response(convert.request_infos_json(lab.requests.wire_listing(p, pending=False)),
                    media_type="application/json")


@router.post("/requests/{object_id}/update_status/")
def update_request_status(
    lab: LabDep,
    p: CurrentUser,
    object_id: str,
    request_id: str,
    new_status: RequestStatus,
    status_change_message: str = "",
) -> str:
    """FINALES2 reads the id from the ``request_id`` query; the path id is not used."""
    lab.requests.transition(p, request_id, new_status, status_change_message)
    return f"Successful change of status to {new_status.value}"


@router.post("/results/")
async def post_result(lab: LabDep, p: CurrentUser, result: Result) -> str:
    row, _ = await lab.writes.run(partial(lab.results.plan_post, p, result))
    return row.uuid


@router.post("/results/post_unsolicited_result")
def post_unsolicited_result(lab: LabDep, p: CurrentUser, result: Result) -> str:
    return lab.results.post_unsolicited(p, result).uuid


@router.get("/results/{object_id}")
def get_result(lab: LabDep, p: CurrentUser, object_id: str) -> ResultInfo | None:
    row = lab.results.get(p, object_id)
    return convert.result_info(row) if row else None


@router.get("/results_requested/{request_id}")
def result_for_request(lab: LabDep, p: CurrentUser, request_id: str) -> ResultInfo | None:
    """The result answering a request (how a requester polls), or ``null``."""
    row = lab.results.for_request(p, request_id)
    return convert.result_info(row) if row else None


@router.get("/results_requested/")
def results_requested(
    lab: LabDep, p: CurrentUser, quantity: str | None = None, method: str | None = None
) -> list[ResultInfo]:
    return [convert.result_info(r) for r in lab.results.list(p, quantity=quantity, method=method)]


@router.post("/results/{object_id}/update_status/")
def update_result_status(
    lab: LabDep,
    p: CurrentUser,
    object_id: str,
    result_id: str,
    new_status: ResultStatus,
    status_change_message: str = "",
) -> str:
    lab.results.set_status(p, result_id, new_status, status_change_message)
    return f"Successful change of status to {new_status.value}"


def _available(lab: Lab, currently_available: bool) -> Iterator[tuple[str, str, CapabilityView, Catalogue]]:
    cat = lab.registry.catalogue()
    for (q, m), cap in sorted(cat.capabilities.items()):
        if currently_available and not (cap.is_active and cat.offers.get((q, m))):
            continue
        yield q, m, cap, cat


@router.get("/capabilities/")
def capabilities(lab: LabDep, p: CurrentUser, currently_available: bool = True) -> list[CapabilityPublic]:
    return [convert.capability(cap) for _, _, cap, _ in _available(lab, currently_available)]


@router.get("/capabilities/templates/")
def capability_templates(
    lab: LabDep,
    p: CurrentUser,
    quantity: str | None = None,
    method: str | None = None,
    currently_available: bool = True,
) -> dict[str, CapabilityTemplate]:
    return {
        f"{q}-{m}": CapabilityTemplate(input_template=template(cap.input_schema),
                                       output_template=template(cap.output_schema))
        for q, m, cap, _ in _available(lab, currently_available)
        if (quantity is None or q == quantity) and (method is None or m == method)
    }


@router.get("/limitations/")
def limitations(lab: LabDep, p: CurrentUser, currently_available: bool = True) -> list[MergedLimitation]:
    """Every active tenant's limitations per method, merged as one list of alternatives."""
    out: list[MergedLimitation] = []
    for q, m, _, cat in _available(lab, currently_available):
        merged: list[Any] = []
        for alternatives in cat.offers.get((q, m), {}).values():
            merged.extend(alternatives)
        out.append(MergedLimitation(quantity=q, method=m, limitations=merged))
    return out


@router.get("/tenants/")
def tenants(lab: LabDep, p: CurrentUser) -> list[TenantInfo]:
    return [convert.tenant_info(t) for t in lab.registry.catalogue().tenants.values()]

"""``/api/v1/`` results: idempotent posting and paged listings."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Response

from labweave.schemas.api import ResultPage
from labweave.schemas.core import Result, ResultInfo

from .. import convert
from ..deps import CurrentUser, LabDep
from ..errors import NotFound
from .api_requests import next_cursor
from .params import Cursor, Limit

router = APIRouter(prefix="/api/v1", tags=["results"])


@router.post("/results", status_code=201,
             responses={200: {"model": ResultInfo, "description": "A repeat: the result stored before"}})
async def post_result(
    lab: LabDep,
    p: CurrentUser,
    body: Result,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ResultInfo:
    """Post a result; the same ``Idempotency-Key`` again returns the stored one (200)."""
    row, created = await lab.writes.run(partial(lab.results.plan_post, p, body, idempotency_key))
    if not created:
        response.status_code = 200
    return convert.result_info(row)


@router.get("/results")
def list_results(
    lab: LabDep,
    p: CurrentUser,
    quantity: str | None = None,
    method: str | None = None,
    request_uuid: str | None = None,
    campaign: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> ResultPage:
    """A page of results in posting order (deleted ones left out); ``next_cursor`` fetches the next one."""
    rows = lab.results.list(p, quantity=quantity, method=method, request_uuid=request_uuid, campaign=campaign,
                            after=cursor, limit=limit)
    return ResultPage(items=[convert.result_info(r) for r in rows], next_cursor=next_cursor(rows, limit))


@router.get("/results/{result_uuid}")
def get_result(lab: LabDep, p: CurrentUser, result_uuid: str) -> ResultInfo:
    row = lab.results.get(p, result_uuid)
    if row is None:
        raise NotFound(f"result {result_uuid} not found")
    return convert.result_info(row)

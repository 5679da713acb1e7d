"""``/api/v1/events``: the change feed, as a JSON page or a server-sent event stream.

The stream sends each event as ``id:``/``event:``/``data:`` lines; a client
reconnecting with ``Last-Event-ID`` (or ``?after=``) misses nothing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from .. import convert
from ..deps import CurrentUser, LabDep
from ..events import last_id, since

router = APIRouter(prefix="/api/v1", tags=["events"])

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0


def _page(lab, after: int, limit: int, kinds: list[str] | None) -> list[dict[str, Any]]:
    with Session(lab.db.read) as s:
        return [convert.event(e) for e in since(s, after, limit, kinds)]


@router.get("/events")
def list_events(
    lab: LabDep,
    p: CurrentUser,
    after: int = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    kind: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    items = _page(lab, after, limit, kind)
    return {"items": items, "next_cursor": items[-1]["id"] if items else after}


@router.get("/events/stream")
async def stream_events(
    request: Request,
    lab: LabDep,
    p: CurrentUser,
    after: int | None = None,
    kind: Annotated[list[str] | None, Query()] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events from ``after`` (default: from now on)."""
    if after is None and last_event_id and last_event_id.isdigit():
        after = int(last_event_id)
    if after is None:

        def newest() -> int:
            with Session(lab.db.read) as s:
                return last_id(s)

        after = await run_in_threadpool(newest)

    async def feed():
        cursor = after
        quiet = 0.0
        yield ": labweave event stream\n\n"
        while not await request.is_disconnected():
            items = await run_in_threadpool(_page, lab, cursor, 500, kind)
            for item in items:
                cursor = item["id"]
                yield f"id: {item['id']}\nevent: {item['kind']}\ndata: {json.dumps(item)}\n\n"
            if items:
                quiet = 0.0
                continue
            await asyncio.sleep(POLL_SECONDS)
            quiet += POLL_SECONDS
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": keep-alive\n\n"

    return StreamingResponse(feed(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

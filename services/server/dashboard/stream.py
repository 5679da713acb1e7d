"""``/dashboard/events``: the event log as server-sent events, for the page's script.

The same feed as ``GET /api/v1/events/stream`` (it reads the ``event`` table
by increasing id, so it works across replicas), authenticated by the session
cookie instead of a bearer header, which ``EventSource`` cannot send. The
session is checked again every :data:`RECHECK_SECONDS`: a stream ends when
its token expires or its user is disabled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from .. import convert
from ..events import last_id, since
from .session import FragmentUser, principal_of

log = logging.getLogger(__name__)

router = APIRouter()

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 30.0
#: How long the browser waits before it reconnects after the stream ends (ms).
RETRY_MS = 3000


def _page(lab, after: int, limit: int = 500) -> list[dict]:
    with Session(lab.db.read) as s:
        return [convert.event(e) for e in since(s, after, limit)]


def _newest(lab) -> int:
    with Session(lab.db.read) as s:
        return last_id(s)


@router.get("/events")
async def events(request: Request, user: FragmentUser, after: int | None = None,
                 last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """Every change from now on (or after ``Last-Event-ID``/``after``), one ``message`` per event."""
    lab = request.app.state.lab
    if after is None and last_event_id and last_event_id.isdigit():
        after = int(last_event_id)
    if after is None:
        after = await run_in_threadpool(_newest, lab)

    async def feed():
        cursor = after
        quiet = 0.0
        checked = time.monotonic()
        yield f"retry: {RETRY_MS}\n: labweave dashboard events for {user.username}\n\n"
        while not await request.is_disconnected():
            if time.monotonic() - checked > RECHECK_SECONDS:
                checked = time.monotonic()
                if principal_of(request) is None:
                    log.info("dashboard event stream of %s ends: the session expired", user.username)
                    yield "event: session-ended\ndata: {}\n\n"
                    return
            items = await run_in_threadpool(_page, lab, cursor)
            for item in items:
                cursor = item["id"]
                yield f"id: {item['id']}\ndata: {json.dumps(item)}\n\n"
            if items:
                quiet = 0.0
                continue
            await asyncio.sleep(POLL_SECONDS)
            quiet += POLL_SECONDS
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": keep-alive\n\n"

    return StreamingResponse(feed(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

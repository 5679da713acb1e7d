"""The event log as a server-sent event stream: one feed for ``/api/v1/events/stream`` and the dashboard.

A feed reads the ``event`` table by increasing id (so it works across
replicas sharing one database), sends each row as ``id:``/``data:`` lines
and a comment every :data:`KEEPALIVE_SECONDS` when nothing happens. A client
reconnecting with ``Last-Event-ID`` (or ``?after=``) misses nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from . import convert
from .events import last_id, since

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
#: Rows read from the table per query.
PAGE = 500


def page(lab, after: int, limit: int = PAGE, kinds: list[str] | None = None) -> list[dict[str, Any]]:
    """Events after id ``after``, oldest first, as the API shows them."""
    with Session(lab.db.read) as s:
        return [convert.event(e) for e in since(s, after, limit, kinds)]


async def start_cursor(lab, after: int | None, last_event_id: str | None) -> int:
    """Where a stream starts: ``after``, else ``Last-Event-ID``, else the newest event (from now on)."""
    if after is None and last_event_id and last_event_id.isdigit():
        after = int(last_event_id)
    if after is None:

        def newest() -> int:
            with Session(lab.db.read) as s:
                return last_id(s)

        after = await run_in_threadpool(newest)
    return after


async def feed(request: Request, lab, cursor: int, *, greeting: str, kinds: list[str] | None = None,
               named: bool = True, ended_because: Callable[[], str | None] | None = None,
               recheck_seconds: float = 30.0) -> AsyncIterator[str]:
    """The stream's text, until the client goes away.

    ``named`` adds an ``event:`` line with the event's kind (the API's stream;
    the dashboard's script listens to plain messages). ``ended_because`` is
    called every ``recheck_seconds`` and says why the stream must end (an
    expired session), or ``None``; on a reason the stream sends
    ``session-ended`` and stops.
    """
    quiet = 0.0
    checked = time.monotonic()
    yield greeting
    while not await request.is_disconnected():
        if ended_because is not None and time.monotonic() - checked > recheck_seconds:
            checked = time.monotonic()
            if ended_because() is not None:
                yield "event: session-ended\ndata: {}\n\n"
                return
        items = await run_in_threadpool(page, lab, cursor, PAGE, kinds)
        for item in items:
            cursor = item["id"]
            name = f"event: {item['kind']}\n" if named else ""
            yield f"id: {item['id']}\n{name}data: {json.dumps(item)}\n\n"
        if items:
            quiet = 0.0
            continue
        await asyncio.sleep(POLL_SECONDS)
        quiet += POLL_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ": keep-alive\n\n"

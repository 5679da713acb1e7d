"""``/api/v1/events``: the change feed, as a JSON page or a server-sent event stream.

The stream sends each event as ``id:``/``event:``/``data:`` lines; a client
reconnecting with ``Last-Event-ID`` (or ``?after=``) misses nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from labweave.schemas.api import EventPage

from .. import event_stream
from ..deps import BearerToken, CurrentUser, LabDep
from . import media
from .params import After, Limit, StreamAfter

router = APIRouter(prefix="/api/v1", tags=["events"])


@router.get("/events")
def list_events(
    lab: LabDep,
    p: CurrentUser,
    after: After = 0,
    limit: Limit = 200,
    kind: Annotated[list[str] | None, Query()] = None,
) -> EventPage:
    """Events after id ``after`` that you may see, oldest first; ``next_cursor`` is the ``after`` of the next page."""
    items = event_stream.page(lab, after, limit, kind, p)
    return EventPage.model_validate({"items": items, "next_cursor": items[-1]["id"] if items else after})


@router.get("/events/stream", response_class=StreamingResponse,
            responses=media.event_stream("Every event after the cursor, then each as it happens"))
async def stream_events(
    request: Request,
    lab: LabDep,
    p: CurrentUser,
    token: BearerToken,
    after: StreamAfter = None,
    kind: Annotated[list[str] | None, Query()] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events from ``after`` (default: from now on), until the token expires."""
    cursor = await event_stream.start_cursor(lab, after, last_event_id)
    body = event_stream.feed(request, lab, cursor, principal=p, greeting=": labweave event stream\n\n", kinds=kind,
                             token=token)
    return StreamingResponse(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

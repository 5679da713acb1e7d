"""``/dashboard/events``: the event log as server-sent events, for the page's script.

The same feed as ``GET /api/v1/events/stream`` (:mod:`..event_stream`),
authenticated by the session cookie instead of a bearer header, which
``EventSource`` cannot send. The session is checked again every
:data:`RECHECK_SECONDS`: a stream ends when its token expires or its user is
disabled.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from .. import event_stream
from ..routes import media
from .session import FragmentUser, principal_of

log = logging.getLogger(__name__)

router = APIRouter()

RECHECK_SECONDS = 30.0
#: How long the browser waits before it reconnects after the stream ends (ms).
RETRY_MS = 3000


@router.get("/events", response_class=StreamingResponse,
            responses=media.event_stream("Every change from now on, one message per event",
                                         ends_with_session=True))
async def events(request: Request, user: FragmentUser, after: int | None = None,
                 last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """Every change from now on (or after ``Last-Event-ID``/``after``), one ``message`` per event."""
    lab = request.app.state.lab
    cursor = await event_stream.start_cursor(lab, after, last_event_id)

    def session_problem() -> str | None:
        if principal_of(request) is None:
            log.info("dashboard event stream of %s ends: the session expired", user.username)
            return "the session expired"
        return None

    body = event_stream.feed(request, lab, cursor, principal=user, named=False, ended_because=session_problem,
                             recheck_seconds=RECHECK_SECONDS,
                             greeting=f"retry: {RETRY_MS}\n: labweave dashboard events for {user.username}\n\n")
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

"""How the routes that do not answer JSON describe their 2xx body in ``/openapi.json``.

FastAPI documents a JSON body from the route's response model; a page, a
metrics scrape or an event stream needs its media type said here, so that
every operation has a schema for what it answers.
"""

from __future__ import annotations

from typing import Any

EVENT = {"$ref": "#/components/schemas/Event"}
#: The ``data`` of the dashboard stream's last message when the session expires (``event: session-ended``).
SESSION_ENDED = {"type": "object", "maxProperties": 0, "description": "event: session-ended (the session expired)"}


def text(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route answering text of ``media_type`` (a page, a script, metrics)."""
    return {200: {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}}


def event_stream(description: str, *, ends_with_session: bool = False) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a server-sent event stream of :class:`labweave.schemas.api.Event`.

    Each message is described as FastAPI describes its own SSE routes (OpenAPI 3.2's ``itemSchema``):
    ``data`` holds an event as JSON (or, with ``ends_with_session``, the empty object of ``session-ended``).
    """
    data = {"anyOf": [EVENT, SESSION_ENDED]} if ends_with_session else EVENT
    item = {
        "type": "object",
        "required": ["data"],
        "properties": {
            "id": {"type": "string", "description": "the event's id: send it back as Last-Event-ID to resume"},
            "event": {"type": "string", "description": "the event's kind"},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
            "retry": {"type": "integer", "minimum": 0},
        },
    }
    body = {"schema": {"type": "string", "description": "id:, event: and data: lines, a blank line after each event"},
            "itemSchema": item}
    return {200: {"description": description, "content": {"text/event-stream": body}}}

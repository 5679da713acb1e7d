"""The lab operator's dashboard at ``/dashboard``: pages, fragments, controls, live events, static files.

``create_app`` includes :data:`router`. Pages are rendered on the server
(Jinja2, :mod:`.render`); one small script (``static/dashboard.js``) keeps
them live from :mod:`.stream`; charts are SVG drawn by :mod:`.charts`.
Nothing is fetched from another site, so the dashboard works offline.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ..errors import NotFound
from ..routes import media
from . import actions, login, pages, stream
from .render import STATIC
from .session import PREFIX

#: The static files, by name: nothing else below ``static/`` is served.
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

router = APIRouter(tags=["dashboard"])

STATIC_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "description": "The file", "content": {media: {"schema": {"type": "string"}} for media in STATIC_TYPES.values()}}}


@router.get(PREFIX + "/static/{name}", response_class=FileResponse, responses=STATIC_RESPONSES)
def static_file(name: str) -> FileResponse:
    """The dashboard's script, style sheet and icon."""
    path = STATIC / name
    media = STATIC_TYPES.get(path.suffix)
    if media is None or "/" in name or name.startswith(".") or not path.is_file():
        raise NotFound(f"no static file {name!r}")
    return FileResponse(path, media_type=media, headers={"Cache-Control": "public, max-age=3600",
                                                         "X-Content-Type-Options": "nosniff"})


for part in (login, pages, actions, stream):
    router.include_router(part.router, prefix=PREFIX)

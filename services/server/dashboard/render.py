"""Templates of the dashboard (Jinja2, autoescaped) and the headers every page carries."""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from labweave.schemas.api import LabStatus

from .. import convert
from ..auth import Principal
from . import session, text

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

#: The pages of the left navigation: (path below /dashboard, label).
NAV = (("", "Overview"), ("/tenants", "Tenants"), ("/queue", "Queue"), ("/campaigns", "Campaigns"))

#: Nothing but this server's own scripts, styles and connections; no framing by other sites.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _svg(markup: str) -> Markup:
    """An SVG made by :mod:`.charts`, which escapes every text it writes."""
    return Markup(markup)


def _query(params: dict[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(number=text.number, short=text.short, ago=text.ago, iso=text.iso, svg=_svg,
                       duration=text.duration, arrow=text.arrow)
    env.globals.update(prediction=text.prediction)
    env.globals.update(query=_query, prefix=session.PREFIX, nav=NAV)
    return env


def static_version() -> str:
    """Changes when a static file changes, so browsers fetch the new one."""
    return str(int(max((p.stat().st_mtime for p in STATIC.iterdir()), default=0)))


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(now=time.time(), **context)


def page(request: Request, name: str, user: Principal | None, active: str = "", status_code: int = 200,
         **context: Any) -> HTMLResponse:
    """A whole page: the layout with the user, the navigation, and a message left by the last action."""
    notice = session.take_flash(request)
    if user is not None:  # the banner of a paused lab (and an operator's pause control) on every page
        context.setdefault("lab_status", lab_status(request))
    body = render(name, request=request, user=user, active=active, notice=notice, version=static_version(),
                  **context)
    response = HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
    if notice is not None:
        response.delete_cookie(session.FLASH_COOKIE, path=session.PREFIX, httponly=True, samesite="strict")
    return response


def lab_status(request: Request) -> LabStatus:
    lab = request.app.state.lab
    return convert.lab_status(lab.pause.state(), lab.pause.running())


def fragment(name: str, user: Principal, **context: Any) -> HTMLResponse:
    """A part of a page, fetched again by the page's script when the lab changes."""
    return HTMLResponse(render(name, user=user, **context), headers=SECURITY_HEADERS)

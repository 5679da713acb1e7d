"""The dashboard's login session: the API's JWT kept in a cookie the page's scripts cannot read.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no
other site's page makes the browser send it, which is the defence against
cross-site request forgery, together with the ``Origin`` check on every
change), scoped to ``/dashboard``, ``Secure`` when the page is served over
HTTPS, and lives as long as the token. The token is the one
``POST /user_management/authenticate`` would give: the same accounts, the
same expiry, checked by the same :class:`~labweave.services.server.auth.Authenticator`.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated
from urllib.parse import quote, unquote, urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response

from ..auth import Principal
from ..errors import Unauthorized

log = logging.getLogger(__name__)

PREFIX = "/dashboard"
COOKIE = "labweave_session"
FLASH_COOKIE = "labweave_flash"
FLASH_SECONDS = 30


def token_of(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


def principal_of(request: Request) -> Principal | None:
    """The logged-in user, or None (no cookie, or an expired or invalid token, or a disabled user)."""
    token = token_of(request)
    if not token:
        return None
    try:
        return request.app.state.lab.auth.principal(token)
    except Unauthorized as exc:
        log.debug("dashboard session refused: %s", exc.message)
        return None


def safe_next(target: str | None) -> str:
    """A place to go after logging in: a path of the dashboard, never another site."""
    if not target:
        return PREFIX
    parts = urlsplit(target)
    inside = parts.path == PREFIX or parts.path.startswith(PREFIX + "/")
    if parts.scheme or parts.netloc or not inside or target.startswith("//") or "\\" in target \
            or parts.path.startswith(f"{PREFIX}/login"):
        return PREFIX
    return target


def login_location(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{PREFIX}/login?next={quote(here, safe='')}"


def set_session(response: Response, request: Request, token: str) -> None:
    lab = request.app.state.lab
    response.set_cookie(COOKIE, token, max_age=int(lab.settings.token_minutes * 60), path=PREFIX, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")


def flash(response: Response, request: Request, message: str, level: str = "info") -> None:
    """A message shown once, on the next page (after a form was posted without JavaScript)."""
    value = quote(json.dumps({"level": level, "text": message[:500]}), safe="")
    response.set_cookie(FLASH_COOKIE, value, max_age=FLASH_SECONDS, path=PREFIX, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def take_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        found = json.loads(unquote(raw))
    except ValueError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("text"), str):
        return None
    level = found.get("level") if found.get("level") in ("info", "error") else "info"
    return {"level": level, "text": found["text"]}


async def page_user(request: Request) -> Principal:
    """A page's user; without a valid session the browser is sent to the login page."""
    p = principal_of(request)
    if p is None:
        headers = {"Location": login_location(request), "Cache-Control": "no-store"}
        raise HTTPException(status_code=303, detail="log in first", headers=headers)
    return p


async def fragment_user(request: Request) -> Principal:
    """The user of a fragment, an action or the event stream: 401 without a session (the script then reloads)."""
    p = principal_of(request)
    if p is None:
        raise HTTPException(status_code=401, detail="log in first")
    return p


async def same_origin(request: Request) -> None:
    """Refuse a change whose ``Origin`` is another site (browsers send it with every POST)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if origin == "null" or urlsplit(origin).netloc != host:
        raise HTTPException(status_code=403, detail=f"cross-site request refused (origin {origin})")


PageUser = Annotated[Principal, Depends(page_user)]
FragmentUser = Annotated[Principal, Depends(fragment_user)]
SameOrigin = Depends(same_origin)

"""Logging in to and out of the dashboard, with the accounts of the API."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ..errors import Invalid, Unauthorized
from ..login_throttle import TooManyAttempts
from . import session
from .render import SECURITY_HEADERS, render, static_version

log = logging.getLogger(__name__)

router = APIRouter()


def _form(request: Request, next_path: str, error: str = "", username: str = "", status_code: int = 200,
          notice: dict | None = None) -> HTMLResponse:
    body = render("login.html", next=next_path, error=error, username=username, notice=notice,
                  version=static_version())
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "") -> Response:
    """The login form; a user still logged in goes straight on."""
    target = session.safe_next(next)
    if session.principal_of(request) is not None:
        return RedirectResponse(target, status_code=303)
    notice = session.take_flash(request)
    response = _form(request, target, notice=notice)
    if notice is not None:
        response.delete_cookie(session.FLASH_COOKIE, path=session.PREFIX, httponly=True, samesite="strict")
    return response


FORM_AGAIN = {"description": "The form again, saying why", "content": {"text/html": {"schema": {"type": "string"}}}}


@router.post("/login", dependencies=[session.SameOrigin], response_class=RedirectResponse, status_code=303,
             responses={303: {"description": "Logged in: on to the page asked for"},
                        401: FORM_AGAIN, 429: FORM_AGAIN})
async def login(request: Request, username: Annotated[str, Form(max_length=100)],
                password: Annotated[str, Form(max_length=200)], next: Annotated[str, Form()] = "") -> Response:
    """Check the password (bcrypt, off the event loop) and keep the token in the session cookie."""
    target = session.safe_next(next)
    address = request.client.host if request.client else None
    try:
        token = await run_in_threadpool(request.app.state.lab.auth.login, username, password, address)
    except (Unauthorized, Invalid, TooManyAttempts) as exc:
        log.info("dashboard login refused for %r", username)
        response = _form(request, target, error=exc.message, username=username, status_code=exc.status_code)
        if isinstance(exc, TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    log.info("dashboard login: %s", username)
    redirect = RedirectResponse(target, status_code=303)
    session.set_session(redirect, request, token)
    return redirect


@router.post("/logout", dependencies=[session.SameOrigin], response_class=RedirectResponse, status_code=303,
             responses={303: {"description": "Logged out: to the login page"}})
def logout(request: Request) -> Response:
    user = session.principal_of(request)
    response = RedirectResponse(f"{session.PREFIX}/login", status_code=303)
    session.clear_session(response)
    if user is not None:
        log.info("dashboard logout: %s", user.username)
        session.flash(response, request, "You are logged out.")
    return response

"""FastAPI dependencies as ``Annotated`` aliases.

They are ``async`` on purpose: they only read memory (a token check hits the
database once per user per cache period), and an async dependency runs on
the event loop instead of costing a trip through the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from .auth import Caller, Principal
from .errors import Forbidden
from .lab import Lab

oauth2 = OAuth2PasswordBearer(tokenUrl="/user_management/authenticate")


async def get_lab(request: Request) -> Lab:
    return request.app.state.lab


LabDep = Annotated[Lab, Depends(get_lab)]


BearerToken = Annotated[str, Depends(oauth2)]


async def current_principal(lab: LabDep, token: BearerToken) -> Principal:
    return lab.auth.principal(token)


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def current_caller(lab: LabDep, token: BearerToken) -> Caller:
    """The token's verified claims and its user as last read: for a route that reads the user's row in its own
    first statement (see ``Authenticator.caller``)."""
    return lab.auth.caller(token)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


async def current_operator(p: CurrentUser) -> Principal:
    if not p.is_operator:
        raise Forbidden("this needs an operator")
    return p


CurrentOperator = Annotated[Principal, Depends(current_operator)]

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


async def get_lab(request: Request) -> Lab:
    return request.app.state.lab


LabDep = Annotated[Lab, Depends(get_lab)]


class _BearerAuth(OAuth2PasswordBearer):
    """The bearer token's verdict, in ONE dependency that is also the API document's OAuth2 scheme.

    FastAPI resolves each dependency of a route with bookkeeping of its own (about 20 microseconds a
    request on this machine); reading the lab and the token here, instead of as two more dependencies,
    spares the hot routes (a new request, a claim) two of them. What the token grants is ``auth``'s rule.
    """

    async def token(self, request: Request) -> str:
        token = await OAuth2PasswordBearer.__call__(self, request)
        assert token is not None  # auto_error: a missing or non-bearer header is answered 401 there
        return token


class _Principal(_BearerAuth):
    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        lab: Lab = request.app.state.lab
        return lab.auth.principal(await self.token(request))


class _Caller(_BearerAuth):
    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        """The token's verified claims and its user as last read: for a route that reads the user's row in its own
        first statement (see ``Authenticator.caller``)."""
        lab: Lab = request.app.state.lab
        return lab.auth.caller(await self.token(request))


class _Token(_BearerAuth):
    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        return await self.token(request)


TOKEN_URL = "/user_management/authenticate"
SCHEME = {"tokenUrl": TOKEN_URL, "scheme_name": "OAuth2PasswordBearer"}  # one scheme in the API document, as before

#: The bearer token itself (a route that must know when it expires).
BearerToken = Annotated[str, Depends(_Token(**SCHEME))]

CurrentUser = Annotated[Principal, Depends(_Principal(**SCHEME))]

CurrentCaller = Annotated[Caller, Depends(_Caller(**SCHEME))]


async def current_operator(p: CurrentUser) -> Principal:
    if not p.is_operator:
        raise Forbidden("this needs an operator")
    return p


CurrentOperator = Annotated[Principal, Depends(current_operator)]

"""The client's exceptions: one hierarchy, rooted at :class:`LabweaveError`.

- :class:`ConnectionFailed`: the server could not be reached (after retries).
- :class:`ServerError`: the server answered 5xx (after retries); ``retry_after``
  holds the seconds its ``Retry-After`` asked for (a 503 of a locked or full
  database says how long to wait).
- :class:`InvalidResponse`: the server answered 2xx with a body that does
  not fit the route's model (a server of another version, or not labweave's).
- :class:`RequestRejected`: the server answered 4xx; never retried. Its
  subclasses name the common statuses: :class:`AuthenticationFailed` (401),
  :class:`PermissionDenied` (403), :class:`NotFound` (404),
  :class:`Conflict` (409: the request is not in a state that allows it, e.g.
  a lost lease), :class:`ValidationFailed` (422: ``detail`` names the field),
  :class:`TooManyRequests` (429: login throttled; ``retry_after`` says how long),
  and :class:`LabPaused` (a 409 of a lab an operator paused: wait and ask again).

:data:`TRANSIENT` are the failures that pass by themselves (the server down or
unreachable, its database locked or full, logins throttled for a while): a
daemon waits and carries on.
"""

from __future__ import annotations

from typing import Any


class LabweaveError(Exception):
    """Anything the labweave client raises."""


class ConnectionFailed(LabweaveError):
    pass


class ServerError(LabweaveError):
    def __init__(self, status_code: int, detail: Any, retry_after: float | None = None):
        self.status_code = status_code
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(f"server error {status_code}: {detail}")


class InvalidResponse(LabweaveError):
    def __init__(self, method: str, path: str, error: Exception):
        self.method = method
        self.path = path
        self.detail = str(error)
        super().__init__(f"{method} {path}: the answer does not fit its model: {error}")


class RequestRejected(LabweaveError):
    def __init__(self, status_code: int, detail: Any, method: str = "", path: str = ""):
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"{method} {path} -> {status_code}: {detail}")


class AuthenticationFailed(RequestRejected):
    pass


class PermissionDenied(RequestRejected):
    pass


class NotFound(RequestRejected):
    pass


class Conflict(RequestRejected):
    pass


class ValidationFailed(RequestRejected):
    pass


class TooManyRequests(RequestRejected):
    """429: the server refused to act for now (too many failed logins); nothing was done, so it is
    safe to try again after ``retry_after`` seconds."""

    def __init__(self, status_code: int, detail: Any, method: str = "", path: str = "",
                 retry_after: float | None = None):
        super().__init__(status_code, detail, method, path)
        self.retry_after = retry_after


class LabPaused(Conflict):
    """409 because an operator paused the lab: not a failure; wait ``retry_after`` seconds and ask again."""

    def __init__(self, status_code: int, detail: Any, method: str = "", path: str = "",
                 retry_after: float | None = None):
        super().__init__(status_code, detail, method, path)
        self.retry_after = retry_after


TRANSIENT = (ConnectionFailed, ServerError, TooManyRequests)


def retry_after(exc: BaseException) -> float | None:
    """The seconds the server asked to wait before trying again, when it said."""
    return exc.retry_after if isinstance(exc, (ServerError, TooManyRequests)) else None


BY_STATUS = {401: AuthenticationFailed, 403: PermissionDenied, 404: NotFound, 409: Conflict, 422: ValidationFailed}


def rejected(status_code: int, detail: Any, method: str, path: str,
             retry_after: float | None = None) -> RequestRejected:
    if status_code == 429:
        return TooManyRequests(status_code, detail, method, path, retry_after)
    return BY_STATUS.get(status_code, RequestRejected)(status_code, detail, method, path)

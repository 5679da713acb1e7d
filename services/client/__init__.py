"""The labweave client: ``AsyncLabClient`` (the core) and ``LabClient`` (its sync wrapper)."""

from .core import AsyncLabClient
from .errors import (AuthenticationFailed, Conflict, ConnectionFailed, InvalidResponse, LabPaused, LabweaveError,
                     NotFound, PermissionDenied, RequestRejected, ServerError, TooManyRequests, ValidationFailed)
from .sync import LabClient

__all__ = ["AsyncLabClient", "LabClient", "LabweaveError", "ConnectionFailed", "ServerError", "InvalidResponse",
           "RequestRejected", "AuthenticationFailed", "PermissionDenied", "NotFound", "Conflict", "ValidationFailed",
           "TooManyRequests", "LabPaused"]

"""labweave's own wire objects for ``/api/v1/``: claims, leases, pages, events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from .core import Request, RequestInfo, RequestStatus

T = TypeVar("T")


class RequestCreate(Request):
    """A request with labweave's scheduling and provenance fields."""

    priority: int = Field(default=0, ge=-1000, le=1000)
    parent_uuid: str | None = None
    campaign: str | None = Field(default=None, max_length=200)
    provenance: dict[str, Any] = Field(default_factory=dict)
    proposed: bool = False


class RequestDetail(RequestInfo):
    """A request with everything the server knows about it."""

    priority: int = 0
    owner_tenant_uuid: str | None = None
    lease_expires_at: datetime | None = None
    lease_expiries: int = 0
    attempts: int = 0
    parent_uuid: str | None = None
    campaign: str | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)
    created_by: str = ""
    failure_reason: str | None = None
    updated: datetime | None = None


class ClaimCreate(BaseModel):
    """Ask for the next request this tenant can serve."""

    quantity: str | None = None
    methods: list[str] | None = None
    lease_seconds: float | None = Field(default=None, gt=0, le=86400)


class Lease(BaseModel):
    request_uuid: str
    tenant_uuid: str
    expires_at: datetime
    lease_seconds: float


class Claim(BaseModel):
    request: RequestDetail
    lease: Lease


class Release(BaseModel):
    reason: str = Field(default="released by its tenant", max_length=2000)


class Failure(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)
    retryable: bool = False


class Cancel(BaseModel):
    reason: str = Field(default="cancelled", max_length=2000)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: int | None = None


class Event(BaseModel):
    """One change: a request's status, a result posted, a tenant registered."""

    id: int
    time: datetime
    kind: str
    subject: str
    from_status: str | None = None
    to_status: str | None = None
    actor: str
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=4, max_length=200)
    role: str = Field(pattern="^(operator|tenant|requester)$")
    tenant_uuid: str | None = None


class StatusCount(BaseModel):
    status: RequestStatus
    count: int

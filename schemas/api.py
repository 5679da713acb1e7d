"""labweave's own wire objects for ``/api/v1/``: claims, leases, pages, events, users, campaigns.

Every ``/api/v1/`` route takes and answers these models (the FINALES2 routes
answer the models of :mod:`.core`, :mod:`.capability` and :mod:`.tenant`), so
``/openapi.json`` describes every body and the client returns them typed.
"""

from __future__ import annotations

import enum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from .core import Request, RequestInfo, RequestStatus, ResultInfo, Timestamp

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
    lease_expires_at: Timestamp | None = None
    lease_expiries: int = 0
    attempts: int = 0
    parent_uuid: str | None = None
    campaign: str | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)
    created_by: str = ""
    failure_reason: str | None = None
    updated: Timestamp | None = None


class ClaimCreate(BaseModel):
    """Ask for the next request this tenant can serve."""

    quantity: str | None = None
    methods: list[str] | None = None
    lease_seconds: float | None = Field(default=None, gt=0, le=86400)


class Lease(BaseModel):
    """A tenant's hold on a reserved request, until ``expires_at`` unless it heartbeats."""

    request_uuid: str
    tenant_uuid: str
    expires_at: Timestamp
    lease_seconds: float


class Claim(BaseModel):
    """A claimed request and the lease that comes with it."""

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
    """Items in order; ask again with ``cursor=next_cursor`` for the next page (None: no more)."""

    items: list[T]
    next_cursor: int | None = None


class RequestPage(Page[RequestDetail]):
    """A page of ``GET /api/v1/requests``."""


class ResultPage(Page[ResultInfo]):
    """A page of ``GET /api/v1/results``."""


class Event(BaseModel):
    """One change: a request's status, a result posted, a tenant registered."""

    id: int
    time: Timestamp
    kind: str
    subject: str
    from_status: str | None = None
    to_status: str | None = None
    actor: str
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class EventPage(Page[Event]):
    """A page of ``GET /api/v1/events``; ``next_cursor`` is the last id read (``after`` for the next page)."""


Role = Literal["operator", "tenant", "requester"]


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=4, max_length=200)
    role: Role
    tenant_uuid: str | None = None


class UserPublic(BaseModel):
    """An account as the API shows it (never its password)."""

    username: str
    role: Role
    tenant_uuid: str | None = None


class StatusCount(BaseModel):
    status: RequestStatus
    count: int


class CampaignStatus(str, enum.Enum):
    """A campaign's status (its moves are the server's lifecycle table)."""

    RUNNING = "running"  # its optimizer proposes experiments
    PAUSED = "paused"  # its optimizer proposes nothing; work already queued goes on
    FINISHED = "finished"  # its budget or stopping rule ended it (said by its optimizer)
    STOPPED = "stopped"  # a person ended it early


class CampaignPut(BaseModel):
    """Create a campaign, or change the spec (and status) of one's own."""

    spec: dict[str, Any] = Field(default_factory=dict)
    status: str | None = Field(default=None, description="one of the CampaignStatus values (checked by the "
                               "campaign lifecycle, whose 422 names the allowed ones)")


class CampaignStatePut(BaseModel):
    """The state a campaign's optimizer daemon keeps for people to read."""

    state: dict[str, Any]


class CampaignRecord(BaseModel):
    """A campaign as the server keeps it: its spec, status, the daemon's state, and its requests by status."""

    name: str
    status: CampaignStatus
    spec: dict[str, Any]
    state: dict[str, Any]
    created_by: str
    created: Timestamp
    updated: Timestamp
    counts: dict[RequestStatus, int] = Field(default_factory=dict)


class Health(BaseModel):
    """``GET /healthz/live`` and ``/healthz/ready``: ``ok`` (with the database's dialect), or ``error`` (503)
    with the kind of fault and what failed."""

    status: Literal["ok", "error"]
    database: str | None = None
    fault: str | None = None
    detail: str | None = None


class ActionOutcome(BaseModel):
    """The answer of a dashboard control sent with ``Accept: application/json``."""

    ok: bool
    message: str


class LabPause(BaseModel):
    """``POST /api/v1/lab/pause``: tenants stop taking work; what is running finishes, or is released."""

    release_running: bool = Field(
        default=False, description="release every running (reserved) request back to pending at once")
    reason: str = Field(default="", max_length=2000)


class LabResume(BaseModel):
    reason: str = Field(default="", max_length=2000)


class LabStatus(BaseModel):
    """Whether an operator has paused the lab (``GET /api/v1/lab``, and the answer of pause and resume)."""

    paused: bool
    release_running: bool = False
    reason: str = ""
    changed_by: str | None = Field(default=None, description="the operator who last paused or resumed it")
    changed_at: Timestamp | None = None
    running: int = Field(description="requests reserved (running) now")
    released: int = Field(default=0, description="requests this pause released back to pending")


class ErrorDetail(BaseModel):
    """A refusal the lab explains in words (401, 403, 404, 409, and a 422 breaking a rule of the lab)."""

    detail: str

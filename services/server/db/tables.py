"""The server's tables (SQLModel). Times are UTC epoch seconds (floats).

``event`` is both the audit log (every status change with actor, time and
message) and the feed of the server-sent event stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, Column, Index, Table, Text, text
from sqlmodel import Field, SQLModel, col


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=100)
    password_hash: str
    role: str = Field(max_length=20)
    tenant_uuid: str | None = Field(default=None, max_length=64)
    is_active: bool = True
    created: float
    #: Raised when the password changes or the user is disabled; a token names the generation it was
    #: issued in, and one from an older generation is refused.
    token_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    password_changed: float | None = None


class LoginFailure(SQLModel, table=True):
    """One failed (or still running) login, per user name and per client address: what throttling counts."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_key_time", "key", "time"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200)
    time: float = Field(index=True)


class Tenant(SQLModel, table=True):
    uuid: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    contact_person: str = ""
    #: what the tenant publishes it can do now (its runtime's limits); always within ``granted``
    limitations: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: what an operator registered it to offer: the envelope its own limitations cannot leave
    #: (None for tenants registered before there was one: their limitations are their envelope)
    granted: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    is_active: bool = True
    stop_requested: bool = False
    created: float
    last_seen: float | None = None


class DeadLetter(SQLModel, table=True):
    """A result its tenant keeps because the server refused it (as the tenant last reported)."""

    __tablename__ = "dead_letter"
    __table_args__ = (Index("ux_dead_letter_tenant_key", "tenant_uuid", "key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_uuid: str = Field(max_length=64)
    key: str = Field(max_length=300)
    request_uuid: str | None = Field(default=None, max_length=64)
    quantity: str = Field(max_length=200)
    method: str = Field(max_length=200)
    refusal: str
    status_code: int | None = None
    kept_at: float
    reported_at: float


class Capability(SQLModel, table=True):
    __table_args__ = (Index("ux_capability_quantity_method", "quantity", "method", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    quantity: str = Field(max_length=200)
    method: str = Field(max_length=200)
    input_schema: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    output_schema: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    is_active: bool = True
    updated: float


class Request(SQLModel, table=True):
    __tablename__ = "request"
    __table_args__ = (
        Index("ix_request_status_id", "status", "id"),
        Index("ix_request_lease", "status", "lease_expires"),
    )

    id: int | None = Field(default=None, primary_key=True)
    uuid: str = Field(index=True, unique=True, max_length=64)
    ctime: float
    updated: float
    status: str = Field(max_length=20)
    quantity: str = Field(max_length=200)
    methods: list[str] = Field(sa_column=Column(JSON, nullable=False))
    parameters: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    tenant_uuid: str = Field(max_length=64)
    priority: int = 0
    owner_tenant_uuid: str | None = Field(default=None, max_length=64)
    last_owner_uuid: str | None = Field(default=None, max_length=64)
    lease_expires: float | None = None
    lease_seconds: float | None = None
    lease_expiries: int = 0
    attempts: int = 0
    failure_reason: str | None = None
    parent_uuid: str | None = Field(default=None, index=True, max_length=64)
    campaign: str | None = Field(default=None, index=True, max_length=200)
    provenance: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(default="", index=True, max_length=100)
    #: The request as FINALES2's listings send it (``quantity``, ``methods``, ``parameters``,
    #: ``tenant_uuid``; none of them ever changes), as JSON text written once at creation, so that
    #: the listings that cannot be paged send it without decoding and encoding it again.
    wire: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: Raised by every claim, reservation and heartbeat: the lease sweeper expires a lease once it
    #: has seen this counter stand still for the lease's length on its own monotonic clock.
    lease_beat: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


# The queue order: claims walk this index by status and quantity, highest priority first, then oldest.
Index("ix_request_queue", col(Request.status), col(Request.quantity), col(Request.priority).desc(), col(Request.id))


class RequestMethod(SQLModel, table=True):
    """One row per method a request names: what claims and filters look up."""

    __tablename__ = "request_method"
    __table_args__ = (Index("ix_request_method_lookup", "quantity", "method", "request_id"),)

    request_id: int = Field(primary_key=True, foreign_key="request.id")
    method: str = Field(primary_key=True, max_length=200)
    quantity: str = Field(max_length=200)


class Result(SQLModel, table=True):
    __tablename__ = "result"
    __table_args__ = (
        # At most one live original result per request: the database itself
        # refuses a duplicate, whatever races the application loses.
        Index(
            "ux_result_one_original",
            "request_uuid",
            unique=True,
            sqlite_where=text("status = 'original' AND request_uuid IS NOT NULL"),
            postgresql_where=text("status = 'original' AND request_uuid IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    uuid: str = Field(index=True, unique=True, max_length=64)
    ctime: float
    status: str = Field(max_length=20)
    request_uuid: str | None = Field(default=None, index=True, max_length=64)
    quantity: str = Field(index=True, max_length=200)
    method: str = Field(max_length=200)
    parameters: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    tenant_uuid: str = Field(max_length=64)
    idempotency_key: str | None = Field(default=None, unique=True, max_length=200)
    posted_by: str = Field(default="", max_length=100)


class EventFields(SQLModel):
    """What an event says; the live log and its archive both hold it."""

    time: float = Field(index=True)
    kind: str = Field(max_length=40)
    subject: str = Field(index=True, max_length=200)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str | None = Field(default=None, max_length=20)
    actor: str = Field(max_length=100)
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)


class Event(EventFields, table=True):
    """The live event log: the audit trail of recent changes and the feed of the event stream."""

    id: int | None = Field(default=None, primary_key=True)


class EventArchive(EventFields, table=True):
    """Events moved out of the live log by retention (``events.archive``), kept with their ids."""

    __tablename__ = "event_archive"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})


class Campaign(SQLModel, table=True):
    """A campaign of the optimizer: its spec, status, and the state its daemon keeps here."""

    name: str = Field(primary_key=True, max_length=200)
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="running", max_length=20)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(default="", max_length=100)
    created: float
    updated: float


class LabState(SQLModel, table=True):
    """Whether an operator has paused the whole lab: one row (``id`` 1), shared by every replica."""

    __tablename__ = "lab_state"

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    paused: bool = False
    #: On pausing: whether the work running then was released back to pending (else it finishes).
    release_running: bool = False
    reason: str = ""
    changed_by: str = Field(default="", max_length=100)
    changed: float = 0.0


class ServerSecret(SQLModel, table=True):
    __tablename__ = "server_secret"

    name: str = Field(primary_key=True, max_length=100)
    value: str


class ReadinessProbe(SQLModel, table=True):
    """One row per server replica, rewritten by each readiness check to prove a write works."""

    __tablename__ = "readiness_probe"

    replica: str = Field(primary_key=True, max_length=200)
    checked: float


M = TypeVar("M", bound=SQLModel)


def table_of(model: type[SQLModel]) -> Table:
    """A model's Core table, for statements built once (type checkers see no ``__table__`` on a SQLModel)."""
    table: Table = getattr(model, "__table__")
    return table


def as_row(mapping: Mapping[Any, Any], model: type[M]) -> M:
    """A row read with Core, with the model's attributes and no ORM identity map (nor its cost)."""
    return cast(M, SimpleNamespace(**mapping))

"""Tenants: instruments and codes that serve requests, with their limitations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from .core import Timestamp
from .limitation import malformed


class LimitationEntry(BaseModel):
    """The limits of one tenant for one quantity and method.

    ``limitations`` mirrors the method's input schema (see
    :mod:`labweave.schemas.limitation`); it is either one object or a list of
    alternative objects.
    """

    quantity: str
    method: str
    limitations: Any = Field(default_factory=dict)

    @field_validator("limitations")
    @classmethod
    def _well_formed(cls, v: Any) -> Any:
        errors = malformed(v)
        if errors:
            raise ValueError("; ".join(errors))
        return v


class TenantDefinition(BaseModel):
    """A FINALES2 tenant file, as ``finales db add tenant`` takes it."""

    name: str
    limitations: list[LimitationEntry] = Field(default_factory=list)
    contact_person: str = ""
    tenant_uuid: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()


class TenantInfo(BaseModel):
    """What ``GET /tenants/`` returns."""

    tenant_uuid: str
    name: str
    limitations: list[LimitationEntry]
    contact_person: str
    is_active: bool


class TenantDetail(TenantInfo):
    """A tenant as ``/api/v1/tenants`` shows it: when it was last seen, and whether an operator stopped it."""

    last_seen: Timestamp | None = None
    stop_requested: bool = False


class MergedLimitation(BaseModel):
    """What ``GET /limitations/`` returns: every active tenant's alternatives."""

    quantity: str
    method: str
    limitations: list[Any]


class DeadLetter(BaseModel):
    """A result the server refused for good (a 4xx that is not transient), kept by its tenant.

    A tenant's outbox keeps it, with the server's refusal, instead of dropping
    it; the tenant reports what it keeps (``PUT /api/v1/tenants/{id}/dead_letters``)
    and an operator decides, on the tenant's machine, to post it again or discard
    it (``labweave tenant outbox``).
    """

    key: str = Field(min_length=1, max_length=300, description="The result's idempotency key in the outbox.")
    request_uuid: str | None = Field(default=None, max_length=64)
    quantity: str = Field(max_length=200)
    method: str = Field(max_length=200)
    refusal: str = Field(max_length=4000, description="The server's message when it refused the result.")
    status_code: int | None = Field(default=None, ge=400, le=499, description="The HTTP status of the refusal.")
    kept_at: Timestamp = Field(description="When the tenant kept it as a dead letter.")


class DeadLetterReport(BaseModel):
    """Every dead letter a tenant keeps now (the report replaces the previous one)."""

    letters: list[DeadLetter] = Field(default_factory=list, max_length=1000)


class TenantDeadLetter(DeadLetter):
    """A dead letter as an operator sees it: whose it is, and when it was last reported."""

    tenant_uuid: str
    tenant_name: str
    reported_at: Timestamp

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

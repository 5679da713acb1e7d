"""Capability definitions: what quantity a method measures, and its schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, field_validator


class Capability(BaseModel):
    """A FINALES2 capability file: ``serialized_quantities/<quantity>/<method>.json``."""

    quantity: str
    method: str
    json_schema_specifications: dict[str, Any]
    json_schema_result_output: dict[str, Any]
    is_active: bool = True

    @field_validator("quantity", "method")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()


class CapabilityPublic(BaseModel):
    """What ``GET /capabilities/`` returns for each capability."""

    quantity: str
    method: str
    json_schema_specifications: dict[str, Any]
    json_schema_result_output: dict[str, Any]

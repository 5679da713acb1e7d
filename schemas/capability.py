"""Capability definitions: what quantity a method measures, and its schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from pydantic import BaseModel, Field, field_validator
from typing_extensions import TypeAliasType

from labweave.schemas.units import check_schema_units


class Capability(BaseModel):
    """A FINALES2 capability file: ``serialized_quantities/<quantity>/<method>.json``.

    Every ``unit`` annotation in its schemas must be a unit in pint's syntax
    (:mod:`labweave.schemas.units`); it is kept as written.
    """

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

    @field_validator("json_schema_specifications", "json_schema_result_output")
    @classmethod
    def _units_readable(cls, v: dict[str, Any]) -> dict[str, Any]:
        check_schema_units(v)
        return v


class CapabilityPublic(BaseModel):
    """What ``GET /capabilities/`` returns for each capability."""

    quantity: str
    method: str
    json_schema_specifications: dict[str, Any]
    json_schema_result_output: dict[str, Any]


class CapabilityDetail(CapabilityPublic):
    """A capability as ``/api/v1/capabilities`` shows it: whether it is active, and which tenants offer it."""

    is_active: bool
    offered_by: list[str] = Field(default_factory=list, description="UUIDs of the active tenants offering it")


#: A schema's template: its object shape, each leaf a string such as ``"required, float"``.
#: (pydantic needs the named alias to build a recursive schema; type checkers read the plain one.)
if TYPE_CHECKING:
    TemplateNode = Union[str, list["TemplateNode"], dict[str, "TemplateNode"]]
else:
    TemplateNode = TypeAliasType("TemplateNode", Union[str, list["TemplateNode"], dict[str, "TemplateNode"]])


class CapabilityTemplate(BaseModel):
    """One entry of ``GET /capabilities/templates/`` (keyed ``"<quantity>-<method>"``)."""

    input_template: TemplateNode
    output_template: TemplateNode

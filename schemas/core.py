"""The FINALES2 wire objects: requests, results, their envelopes and statuses.

Field names are FINALES2 v1.1.0's (see ``shared/finales2/API.md``), so that
FINALES2 tenants and clients work unchanged. labweave's additions live in
:mod:`labweave.schemas.api`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema, field_validator, model_validator


#: A time on the wire: ISO 8601 with its UTC offset written out (``2025-01-01T12:00:00.5+00:00``), as the
#: server has always sent it and as ``datetime.fromisoformat`` reads it on every Python (a ``Z`` needs 3.11).
Timestamp = Annotated[
    datetime,
    PlainSerializer(lambda t: t.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class RequestStatus(str, enum.Enum):
    """Lifecycle of a request; FINALES2's five names first, labweave's after."""

    PENDING = "pending"
    RESERVED = "reserved"
    RESOLVED = "resolved"
    RETRACTED = "retracted"
    UNSOLICITED = "unsolicited"
    FAILED = "failed"
    PROPOSED = "proposed"


class ResultStatus(str, enum.Enum):
    ORIGINAL = "original"
    DELETED = "deleted"
    AMENDED = "amended"


def _name(value: str, field: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{field} must not be empty")
    if len(value) > 200:
        raise ValueError(f"{field} is longer than 200 characters")
    return value


class Request(BaseModel):
    """A request for a quantity by one of several methods.

    ``parameters`` holds one entry per method, each checked against that
    method's input schema.
    """

    model_config = ConfigDict(extra="ignore")

    quantity: str
    methods: list[str] = Field(min_length=1)
    parameters: dict[str, dict[str, Any]]
    tenant_uuid: str

    @field_validator("quantity")
    @classmethod
    def _quantity(cls, v: str) -> str:
        return _name(v, "quantity")

    @field_validator("methods")
    @classmethod
    def _methods(cls, v: list[str]) -> list[str]:
        names = [_name(m, "methods") for m in v]
        if len(set(names)) != len(names):
            raise ValueError("methods must not repeat a method")
        return names

    @model_validator(mode="after")
    def _parameters_per_method(self) -> "Request":
        missing = [m for m in self.methods if m not in self.parameters]
        if missing:
            raise ValueError(f"parameters has no entry for method(s) {missing}")
        extra = [k for k in self.parameters if k not in self.methods]
        if extra:
            raise ValueError(f"parameters names method(s) {extra} that are not in methods")
        return self


class RequestInfo(BaseModel):
    uuid: str
    ctime: Timestamp
    status: RequestStatus
    request: Request


class Result(BaseModel):
    """A result for a request: ``method`` and ``parameters`` name exactly one method."""

    model_config = ConfigDict(extra="ignore")

    data: dict[str, Any]
    quantity: str
    method: list[str] = Field(min_length=1, max_length=1)
    parameters: dict[str, dict[str, Any]]
    tenant_uuid: str
    request_uuid: str = ""

    @field_validator("quantity")
    @classmethod
    def _quantity(cls, v: str) -> str:
        return _name(v, "quantity")

    @model_validator(mode="after")
    def _one_method(self) -> "Result":
        if list(self.parameters) != self.method:
            raise ValueError(
                f"parameters must have exactly one key, the method {self.method[0]!r}; got {list(self.parameters)}"
            )
        return self


class ResultInfo(BaseModel):
    uuid: str
    ctime: Timestamp
    status: ResultStatus
    result: Result


class AccessToken(BaseModel):
    """What ``POST /user_management/authenticate`` answers (OAuth2's password flow)."""

    access_token: str
    token_type: str = "bearer"

"""A campaign's requests and results as the server returns them, built in a few lines for tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from labweave.schemas.api import RequestDetail
from labweave.schemas.core import ResultInfo

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def request(uuid: str, *, status: str = "resolved", method: str = "m", methods: list[str] | None = None,
            parameters: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None,
            second: float = 0.0, campaign: str = "c") -> RequestDetail:
    """A request of ``campaign`` for ``methods`` (default: ``[method]``), made ``second`` s after T0."""
    methods = methods or [method]
    prov = {"parameters": parameters or {}} | (provenance or {})
    return RequestDetail.model_validate({
        "uuid": uuid, "ctime": T0 + timedelta(seconds=second), "status": status, "campaign": campaign,
        "request": {"quantity": "q", "methods": methods, "parameters": {m: {} for m in methods}, "tenant_uuid": "t"},
        "provenance": prov})


def result(request_uuid: str, data: dict[str, Any], *, method: str = "m", second: float = 0.0,
           status: str = "original") -> ResultInfo:
    """The result of ``request_uuid`` by ``method``, posted ``second`` s after T0."""
    return ResultInfo.model_validate({
        "uuid": f"res-{request_uuid}-{second}", "ctime": T0 + timedelta(seconds=second), "status": status,
        "result": {"data": data, "quantity": "q", "method": [method], "parameters": {method: {}},
                   "tenant_uuid": "t", "request_uuid": request_uuid}})


def run(measured: list[tuple[str, dict[str, Any], dict[str, Any]]]
        ) -> tuple[list[RequestDetail], list[ResultInfo]]:
    """Requests ``r0, r1, ...`` each resolved in turn: ``(method, result data, provenance)`` per request."""
    requests, results = [], []
    for i, (method, data, provenance) in enumerate(measured):
        requests.append(request(f"r{i}", method=method, provenance=provenance, second=i))
        results.append(result(f"r{i}", data, method=method, second=i + 0.5))
    return requests, results

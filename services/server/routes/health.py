"""Health (liveness, readiness) and Prometheus ``/metrics``.

- ``/healthz/live``: the process answers; touches nothing else, so a busy or
  broken database never gets a live server restarted.
- ``/healthz/ready`` (and ``/healthz``, its old name): the server can do its
  work, proved by a committed write (each replica rewrites its row of
  ``readiness_probe``); 503 with ``Retry-After`` and the fault otherwise, so a
  proxy stops sending traffic to a replica whose database is locked, full or
  read-only.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest
from sqlmodel import Session

from labweave.schemas.api import Health

from ..db.tables import ReadinessProbe
from ..deps import LabDep
from ..storage_faults import classify
from . import media

router = APIRouter(tags=["health"])

REPLICA = f"{socket.gethostname()}:{os.getpid()}"


#: The answer of a replica that cannot do its work (with ``Retry-After``).
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": Health, "description": "The database does not take a write: the fault and what failed"}}


@router.get("/healthz/live", response_model_exclude_none=True)
def live() -> Health:
    """The process is up (no database involved)."""
    return Health(status="ok")


@router.get("/healthz/ready", response_model=Health, response_model_exclude_none=True, responses=NOT_READY)
@router.get("/healthz", response_model=Health, response_model_exclude_none=True, responses=NOT_READY)
def ready(lab: LabDep) -> Health | JSONResponse:
    """The database takes a write: 200, else 503 naming the fault."""
    try:
        with Session(lab.db.write) as s:
            row = s.get(ReadinessProbe, REPLICA) or ReadinessProbe(replica=REPLICA, checked=0.0)
            row.checked = time.time()
            s.add(row)
            s.commit()
        return Health(status="ok", database=lab.db.write.dialect.name)
    except Exception as exc:  # the point of a health check is to report, not raise
        fault = classify(exc)
        detail = fault.detail if fault else f"{type(exc).__name__}: {exc}"
        retry = fault.retry_after if fault else 10
        body = Health(status="error", fault=fault.kind if fault else "error", detail=detail)
        return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=503,
                            headers={"Retry-After": str(retry)})


@router.get("/metrics", response_class=PlainTextResponse,
            responses=media.text("text/plain", "The queue's state in Prometheus' text format"))
def metrics(lab: LabDep) -> PlainTextResponse:
    """The lab's metrics in Prometheus' text format (what they are: ``labweave.services.server.metrics``)."""
    return PlainTextResponse(generate_latest(lab.metrics), media_type="text/plain; version=0.0.4")

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
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func
from sqlmodel import Session, select

from labweave.schemas.api import Health

from ..db.tables import Event, ReadinessProbe, Request, Result, Tenant
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


class LabCollector:
    """Reads the queue's state from the database at each scrape."""

    def __init__(self, lab):
        self.lab = lab

    def collect(self):
        with Session(self.lab.db.read) as s:
            by_status = s.exec(select(Request.status, func.count()).group_by(Request.status)).all()
            results = s.exec(select(func.count()).select_from(Result)).one()
            expiries = s.exec(
                select(func.count()).select_from(Event).where(Event.actor == "lease-sweeper")
            ).one()
            tenants = list(s.exec(select(Tenant)))
        g = GaugeMetricFamily("labweave_requests", "Requests by status", labels=["status"])
        for status, count in by_status:
            g.add_metric([status], count)
        yield g
        yield CounterMetricFamily("labweave_results", "Results stored", value=results)
        yield CounterMetricFamily("labweave_lease_expiries", "Leases that ran out", value=expiries)
        now = time.time()
        online = sum(
            1 for t in tenants
            if t.is_active and t.last_seen and now - t.last_seen < self.lab.settings.tenant_offline_seconds
        )
        t = GaugeMetricFamily("labweave_tenants", "Tenants by state", labels=["state"])
        t.add_metric(["registered"], len(tenants))
        t.add_metric(["online"], online)
        yield t


def metrics_registry(lab) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(LabCollector(lab))
    return registry


@router.get("/metrics", response_class=PlainTextResponse,
            responses=media.text("text/plain", "The queue's state in Prometheus' text format"))
def metrics(lab: LabDep) -> PlainTextResponse:
    """Requests by status, results, lease expiries, tenants registered and online."""
    return PlainTextResponse(generate_latest(lab.metrics), media_type="text/plain; version=0.0.4")

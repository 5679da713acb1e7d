"""``/healthz`` and Prometheus ``/metrics``."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, text
from sqlmodel import Session, select

from ..db.tables import Event, Request, Result, Tenant
from ..deps import LabDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(lab: LabDep) -> JSONResponse:
    try:
        with Session(lab.db.read) as s:
            s.exec(text("SELECT 1"))
        return JSONResponse({"status": "ok", "database": lab.db.write.dialect.name})
    except Exception as exc:  # the point of a health check is to report, not raise
        return JSONResponse({"status": "error", "detail": str(exc)}, status_code=503)


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


@router.get("/metrics")
def metrics(lab: LabDep) -> PlainTextResponse:
    return PlainTextResponse(generate_latest(lab.metrics), media_type="text/plain; version=0.0.4")

"""The lab's Prometheus metrics (``GET /metrics``), each named once here or where it is counted.

Two kinds, as Prometheus expects of replicated servers:

- **the lab's state**, read from the database at each scrape, so every replica
  reports the same numbers (take one replica's, or ``max``): requests by
  status and quantity, the age of the oldest pending request of each quantity
  (a queue nobody serves grows old), results stored, leases that ran out,
  tenants registered and online;
- **what this replica did**, counted in its process (sum over replicas): HTTP
  answers by method, route and status and their times
  (:mod:`.access_log`), claims and how long their requests waited, heartbeats,
  and results refused (:class:`LabMetrics`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func
from sqlmodel import Session, select

from labweave.schemas.core import RequestStatus

from .db.tables import Event, Request, Result, Tenant

if TYPE_CHECKING:
    from .lab import Lab


#: Buckets of how long a claimed request waited (seconds): a busy lab claims within a second, a slow
#: instrument's queue waits hours.
WAIT_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


class LabMetrics:
    """What this replica did, counted in its process (``sum`` over replicas).

    The services call these methods (they import nothing of Prometheus); each
    figure is counted in one place: claims and reservations and heartbeats by
    :class:`.requests.Requests`, refused results by :class:`.results.Results`,
    lease expiries by this replica's sweeper (:func:`.app.create_app`).
    """

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self._claims = Counter("labweave_claims", "Requests taken by a tenant (a claim or a FINALES2 reservation), "
                               "by quantity", ["quantity"], registry=registry)
        self._waited = Histogram("labweave_claim_wait_seconds", "How long a claimed request had waited since it "
                                 "was created, by quantity", ["quantity"], buckets=WAIT_BUCKETS, registry=registry)
        self._heartbeats = Counter("labweave_heartbeats", "Heartbeats: extended (the lease renewed) or lost (409: "
                                   "the tenant no longer holds it)", ["outcome"], registry=registry)
        self._refused = Counter("labweave_results_refused", "Results refused, by HTTP status and a short reason",
                                ["status", "reason"], registry=registry)
        self._expired = Counter("labweave_sweeper_lease_expiries", "Leases this replica's sweeper took back "
                                "(the request pending again, or failed after too many)", registry=registry)

    def claimed(self, quantity: str, waited_seconds: float) -> None:
        self._claims.labels(quantity).inc()
        self._waited.labels(quantity).observe(max(0.0, waited_seconds))

    def heartbeat(self, extended: bool) -> None:
        self._heartbeats.labels("extended" if extended else "lost").inc()

    def result_refused(self, status: int, reason: str) -> None:
        self._refused.labels(str(status), reason).inc()

    def leases_expired(self, count: int) -> None:
        if count:
            self._expired.inc(count)


class LabState:
    """Reads the queue's state from the database at each scrape."""

    def __init__(self, lab: Lab):
        self.lab = lab

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        with Session(self.lab.db.read) as s:
            by_status = s.exec(select(Request.status, Request.quantity, func.count())
                               .group_by(Request.status, Request.quantity)).all()
            oldest = s.exec(select(Request.quantity, func.min(Request.ctime))
                            .where(Request.status == RequestStatus.PENDING.value)
                            .group_by(Request.quantity)).all()
            results = s.exec(select(func.count()).select_from(Result)).one()
            expiries = s.exec(select(func.count()).select_from(Event).where(Event.actor == "lease-sweeper")).one()
            tenants = list(s.exec(select(Tenant.is_active, Tenant.last_seen)))
        requests = GaugeMetricFamily("labweave_requests", "Requests by status and quantity",
                                     labels=["status", "quantity"])
        for status, quantity, count in by_status:
            requests.add_metric([status, quantity], count)
        yield requests
        age = GaugeMetricFamily("labweave_oldest_pending_seconds",
                                "Age of the oldest pending request, by quantity (a queue nobody serves grows old)",
                                labels=["quantity"])
        for quantity, ctime in oldest:
            age.add_metric([quantity], max(0.0, now - ctime))
        yield age
        yield CounterMetricFamily("labweave_results", "Results stored", value=results)
        yield CounterMetricFamily("labweave_lease_expiries", "Leases that ran out", value=expiries)
        offline_after = self.lab.settings.tenant_offline_seconds
        online = sum(1 for active, seen in tenants if active and seen and now - seen < offline_after)
        t = GaugeMetricFamily("labweave_tenants", "Tenants by state", labels=["state"])
        t.add_metric(["registered"], len(tenants))
        t.add_metric(["online"], online)
        yield t


def metrics_registry(lab: Lab) -> CollectorRegistry:
    """The lab's registry (its own per lab: tests build many), now also holding the lab's state."""
    registry = lab.activity.registry
    registry.register(LabState(lab))
    return registry

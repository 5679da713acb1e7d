"""The intention server's application factory: ``create_app(settings)``.

Nothing is built at import time: each call opens its own database, so tests
give every app its own file.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.exc import InternalError, OperationalError

from . import api_document
from .access_log import AccessLog
from .body_guard import BodyGuard, BodyLimits
from .config import Settings
from .db.engine import DatabaseBusy
from .dashboard import routes as dashboard
from .errors import ServiceError
from .storage_faults import classify
from .lab import Lab
from .lab_pause import LabPaused
from .events import archive_old_events
from .leases import LeaseSweeper
from .metrics import metrics_registry
from .routes import (api_campaigns, api_dead_letters, api_events, api_lab, api_registry, api_requests, api_results,
                     finales2, health)

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    lab = Lab.open(settings, background_checkpoints=True)  # the scheduler below checkpoints SQLite's log
    lab.metrics = metrics_registry(lab)
    sweeper = LeaseSweeper(lab.db, settings.max_lease_expiries)

    def checkpoint() -> None:
        """Copy SQLite's log into the database file, off the event loop; a failed one is logged (the next one
        carries on, and SQLite's own bound on the log stays)."""
        try:
            lab.db.checkpoint()
        except Exception as exc:  # noqa: BLE001 - the driver's own errors (a full disk...), never fatal here
            log.warning("checkpoint skipped: %s", exc)

    def sweep_leases() -> None:
        """One sweep; a locked or full database skips it with a line in the log (the next one catches up)."""
        try:
            lab.activity.leases_expired(sweeper.sweep())
        except (OperationalError, InternalError, DatabaseBusy) as exc:
            fault = classify(exc)
            if fault is None:
                raise
            log.warning("lease sweep skipped: %s", fault.detail)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(
            sweep_leases, "interval", seconds=settings.sweep_seconds, id="lease-sweep", max_instances=1,
            coalesce=True,
        )
        if lab.db.is_sqlite:
            scheduler.add_job(checkpoint, "interval", seconds=1, id="checkpoint", max_instances=1, coalesce=True)
        if settings.event_retention_days > 0:
            scheduler.add_job(
                archive_old_events, "interval", hours=1, args=[lab.db, settings.event_retention_days],
                id="event-retention", max_instances=1, coalesce=True, next_run_time=datetime.now(),
            )
        scheduler.start()
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            scheduler.shutdown(wait=False)
            lab.close()

    app = FastAPI(
        title="labweave intention server",
        version="0.1.0",
        description="FINALES2-compatible intention server of a self-driving lab, with atomic claims and leases.",
        lifespan=lifespan,
    )
    app.state.lab = lab
    app.state.lease_sweeper = sweeper
    app.state.sweep_leases = sweep_leases  # what the scheduler runs (tests call it, not waiting for the schedule)
    app.add_middleware(
        BodyGuard,
        limits=BodyLimits(settings.max_body_bytes, settings.max_json_depth, settings.max_json_items),
    )
    app.add_middleware(AccessLog, registry=lab.metrics)  # outermost: it sees every answer, the guard's too

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if isinstance(exc, LabPaused):  # a pause, not a fault: the claimer waits and asks again
            return JSONResponse({"detail": exc.message, "lab": "paused"}, status_code=exc.status_code,
                                headers={"Retry-After": str(exc.retry_after)})
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InternalError)
    @app.exception_handler(DatabaseBusy)
    async def _storage_fault(request: Request, exc: Exception) -> JSONResponse:
        fault = classify(exc)
        if fault is None:
            raise exc
        log.warning("%s %s: %s (%s)", request.method, request.url.path, fault.detail, exc)
        return JSONResponse({"detail": f"{fault.detail}; try again later", "fault": fault.kind},
                            status_code=503, headers={"Retry-After": str(fault.retry_after)})

    for module in (finales2, api_requests, api_results, api_registry, api_dead_letters, api_campaigns, api_events,
                   api_lab, health, dashboard):
        app.include_router(module.router)
    api_document.describe(app)

    @app.get("/", include_in_schema=False)
    async def _home() -> RedirectResponse:
        return RedirectResponse("/dashboard")

    return app

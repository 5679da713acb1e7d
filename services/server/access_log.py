"""The server's access log and HTTP metrics, and the request id of each call.

A pure ASGI middleware (no per-call task or body copy, unlike Starlette's
``BaseHTTPMiddleware``), outermost, so it sees every answer, the body guard's
413s and the storage faults' 503s included:

- binds the call's request id (:mod:`labweave.services.logs`): the caller's
  well-formed ``X-Request-ID`` or a new one, sent back in the answer's header;
- logs one line per call at INFO on ``labweave.access`` (method, route, path,
  status, milliseconds, request id);
- counts answers by method, route and status, and times them by route, in
  the lab's Prometheus registry (``/metrics``). The route is the path's
  template (``/api/v1/requests/{request_id}``), so the series stay few
  whatever ids are called.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from labweave.services.logs import HEADER, request_id_bound, well_formed

log = logging.getLogger("labweave.access")

#: Buckets of the answer times (seconds): a claim takes milliseconds; a slow listing or a locked database seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_HEADER_KEY = HEADER.lower().encode()


class AccessLog:
    def __init__(self, app: ASGIApp, registry: CollectorRegistry):
        self.app = app
        self.responses = Counter("labweave_http_responses", "HTTP answers by method, route and status",
                                 ["method", "route", "status"], registry=registry)
        self.seconds = Histogram("labweave_http_request_seconds", "Time to answer (to the end of the body), by route",
                                 ["route"], buckets=BUCKETS, registry=registry)
        # Each series' child, found once: ``labels()`` checks and joins its label values on every call. The keys are
        # few (method x route template x status), as the series are.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == _HEADER_KEY), None)
        status = 500
        started = time.perf_counter()
        with request_id_bound(well_formed(incoming)) as request_id:
            header = (_HEADER_KEY, request_id.encode())

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", []), header]
                await send(message)

            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        key = (scope["method"], template, status)
        series = self._series.get(key)
        if series is None:
            series = (self.responses.labels(key[0], template, str(status)), self.seconds.labels(template))
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)
        if log.isEnabledFor(logging.INFO):
            log.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, seconds * 1000,
                     extra={"method": scope["method"], "route": template, "path": scope["path"], "status": status,
                            "duration_ms": round(seconds * 1000, 2)})

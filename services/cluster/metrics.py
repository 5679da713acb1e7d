"""Counts of the computations handed to Dask, by label: the one place they are kept.

The executor (:mod:`.executor`) counts each computation when it is
submitted, when it finishes with a value, and when it fails (an exception of
its own, a lost worker, a cancellation); the tenant logs them when it stops,
and a metrics exporter reads them with :func:`snapshot`.
"""

from __future__ import annotations

import threading
from collections import Counter

#: The outcomes counted.
OUTCOMES = ("submitted", "finished", "failed")

_counts: Counter[tuple[str, str]] = Counter()
_lock = threading.Lock()


def count(outcome: str, label: str) -> None:
    """Add one to ``outcome`` (one of :data:`OUTCOMES`) of computations labelled ``label``."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
    with _lock:
        _counts[(outcome, label)] += 1


def snapshot() -> dict[str, dict[str, int]]:
    """``{outcome: {label: count}}`` so far in this process (every outcome present, maybe empty)."""
    with _lock:
        out: dict[str, dict[str, int]] = {outcome: {} for outcome in OUTCOMES}
        for (outcome, label), n in _counts.items():
            out[outcome][label] = n
        return out


def totals() -> dict[str, int]:
    """``{outcome: count}`` over every label."""
    return {outcome: sum(by_label.values()) for outcome, by_label in snapshot().items()}


def reset() -> None:
    """Forget every count (tests)."""
    with _lock:
        _counts.clear()


class DaskTasks:
    """A Prometheus collector of these counts: ``labweave_dask_tasks_total{outcome, computation}``."""

    def collect(self):  # noqa: ANN201 (prometheus_client's collector protocol)
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily("labweave_dask_tasks", "Computations this tenant handed to Dask, by outcome "
                                     "(submitted, finished, failed) and computation", labels=["outcome", "computation"])
        for outcome, by_label in snapshot().items():
            for label, n in sorted(by_label.items()):
                family.add_metric([outcome, label], n)
        yield family


def serve_metrics(port: int, host: str = "127.0.0.1"):  # noqa: ANN201
    """Serve the counts for Prometheus at ``http://host:port/metrics`` (prometheus_client's own server,
    in a daemon thread); returns the server (``shutdown()`` stops it)."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(DaskTasks())
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server

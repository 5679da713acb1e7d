"""The Dask task counts of a tenant, scraped over HTTP as ``labweave tenant run --metrics-port`` serves them."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from labweave.drivers.atomistic.frontend import EmtSimulator
from labweave.services.cluster import metrics
from labweave.services.cluster.executor import DaskExecutor
from labweave.services.server.process import free_port

from .test_same_results import ALLOY


def test_a_real_computation_is_counted_at_the_metrics_port():
    metrics.reset()

    async def run() -> None:
        executor = await DaskExecutor.connect("local")
        try:
            emt = EmtSimulator()
            emt.backend.executor = executor
            await emt.perform("bulk_properties", "emt", ALLOY)
        finally:
            await executor.close()

    asyncio.run(run())
    port = free_port()
    server = metrics.serve_metrics(port)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        server.shutdown()
    tasks = {(s.labels["outcome"], s.labels["computation"]): s.value
             for family in text_string_to_metric_families(text) if family.name == "labweave_dask_tasks"
             for s in family.samples if s.name == "labweave_dask_tasks_total"}
    assert tasks == {("submitted", "emt-bulk-properties"): 1, ("finished", "emt-bulk-properties"): 1}

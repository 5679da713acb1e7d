"""A request gives the same result in the tenant's process and on a real Dask worker (seeded noise included)."""

from __future__ import annotations

import asyncio

import pytest

from labweave.drivers.atomistic.frontend import EmtSimulator
from labweave.drivers.base import InstrumentFault
from labweave.drivers.compute import Computation
from labweave.drivers.cycler.frontend import Cycler
from labweave.drivers.cycler.sim import SimulatedCyclerBackend
from labweave.services.cluster import metrics
from labweave.services.cluster.executor import DaskExecutor

ALLOY = {"alloy": {"prototype": "fcc", "composition": {"Cu": 0.5, "Ag": 0.5}, "supercell": 1}, "fmax": 0.05}
#: A short test: one formation cycle and three cycles.
CYCLING = {"cycling_protocol": "BIG-MAP-Standard", "number_cycles": 3, "repetions_formation_cycle": 1,
           "cell_info": {"uuid": "cell-on-dask", "cell_name": "CR2032"},
           "location": {"address": "labweave simulated lab", "detail_1": "cycler"}, "reservation_number": "t"}
#: What differs between two runs of one calculation wherever they run: its cost.
COSTS = ("cost_cpu_seconds", "wall_seconds")


def physics(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in COSTS}


def fails_on_a_worker() -> None:
    raise InstrumentFault("the solver diverged", retryable=False)


def test_emt_and_pybamm_results_are_the_same_in_process_and_on_dask(dask_cluster):
    dask_cluster.add_worker("w1")
    metrics.reset()

    async def run(executor) -> tuple[dict, dict, dict]:
        emt, cycler = EmtSimulator(), Cycler(SimulatedCyclerBackend(None, seed=7))
        if executor is not None:
            emt.backend.executor = cycler.backend.executor = executor
        first = await cycler.perform("capacity", "cycling", CYCLING)
        second = await cycler.perform("capacity", "cycling", CYCLING)  # the same cell's second test: new noise
        return await emt.perform("bulk_properties", "emt", ALLOY), first, second

    here = asyncio.run(run(None))

    async def on_dask():
        executor = await DaskExecutor.connect(dask_cluster.address)
        try:
            results = await run(executor)
            with pytest.raises(InstrumentFault, match="diverged") as raised:  # its own error, as raised there
                await executor.run(Computation(fails_on_a_worker, name="diverges"))
            assert raised.value.retryable is False
            return results
        finally:
            await executor.close()

    there = asyncio.run(on_dask())
    assert physics(there[0]) == physics(here[0])
    assert here[0]["lattice_constant"] == pytest.approx(3.88, abs=0.08)  # between Cu 3.59 and Ag 4.06
    assert there[1:] == here[1:]
    assert here[1] != here[2]  # the noise is drawn per test, by the tenant, and travels with the computation
    counts = metrics.snapshot()
    assert counts["submitted"] == {"emt-bulk-properties": 1, "pybamm-cycling": 2, "diverges": 1}
    assert counts["finished"] == {"emt-bulk-properties": 1, "pybamm-cycling": 2}
    assert counts["failed"] == {"diverges": 1}


def test_the_embedded_cluster_computes_in_the_tenants_process():
    async def run():
        executor = await DaskExecutor.connect("local")
        try:
            emt = EmtSimulator()
            emt.backend.executor = executor
            return await emt.perform("bulk_properties", "emt", ALLOY), await executor.slots({"GPU": 1})
        finally:
            await executor.close()

    result, pool = asyncio.run(run())
    assert pool == ("any worker", 1)  # one thread: one request at a time, as without Dask
    assert physics(result) == physics(asyncio.run(EmtSimulator().perform("bulk_properties", "emt", ALLOY)))

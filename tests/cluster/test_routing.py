"""Which workers a computation runs on: GPU workers for the MLIP where the cluster has some, else anywhere."""

from __future__ import annotations

import asyncio

import pytest

from labweave.drivers.atomistic.emt import EmtBackend
from labweave.drivers.atomistic.mlip import ChgnetBackend
from labweave.drivers.compute import Computation, Executor
from labweave.services.cluster.executor import DaskExecutor, check_scheduler, pool_of

CPU = {"nthreads": 2, "resources": {}}
GPU = {"nthreads": 4, "resources": {"GPU": 1}}
TWO_GPUS = {"nthreads": 4, "resources": {"GPU": 2}}


def test_a_gpu_computation_is_routed_to_gpu_workers_only_where_there_are_some():
    assert pool_of({"a": CPU, "b": GPU}, {"GPU": 1}) == ("GPU=1", 1, True)  # one GPU: one at a time
    assert pool_of({"a": CPU, "b": TWO_GPUS, "c": GPU}, {"GPU": 1}) == ("GPU=1", 3, True)
    assert pool_of({"a": CPU, "b": CPU}, {"GPU": 1}) == ("any worker", 4, False)  # none: anywhere
    assert pool_of({"a": CPU, "b": GPU}, {}) == ("any worker", 6, False)
    assert pool_of({}, {"GPU": 1}) == ("any worker", 0, False)


def test_the_mlip_asks_for_a_gpu_and_emt_for_nothing():
    seen: list[Computation] = []

    class Recorder(Executor):
        async def run(self, computation, stop=None):
            seen.append(computation)

    from labweave.schemas.atomistic import BulkPropertiesParameters

    params = BulkPropertiesParameters.model_validate({"alloy": {"prototype": "fcc", "composition": {"Cu": 1.0},
                                                               "supercell": 1}})
    for backend in (ChgnetBackend(), EmtBackend()):
        backend.executor = Recorder()
        asyncio.run(backend.bulk_properties(params))
    assert seen[0].resources == {"GPU": 1} and seen[1].resources == {}
    assert seen[0].warmups and seen[0].name == "chgnet-bulk-properties"


@pytest.mark.parametrize("text", ["tcp://10.0.0.5:8786", "local", "none", "tls://h:1"])
def test_scheduler_addresses_accepted(text):
    assert check_scheduler(text) == text


@pytest.mark.parametrize("text", ["10.0.0.5:8786", "tcp://", "http://h:8786", ""])
def test_scheduler_addresses_refused_naming_the_option(text):
    with pytest.raises(ValueError, match="--dask-scheduler"):
        check_scheduler(text)


def test_real_workers_with_and_without_gpu_resources(dask_cluster):
    """A worker started with ``--resources GPU=1`` takes every GPU computation; without one, any worker does."""
    dask_cluster.add_worker("plain")
    dask_cluster.add_worker("gpu", gpu=True)

    def where() -> str:  # pickled by value: the workers need not import this test
        from distributed import get_worker

        return get_worker().name

    async def run_each(resources: dict, n: int) -> tuple[list[str], tuple[str, int]]:
        executor = await DaskExecutor.connect(dask_cluster.address)
        try:
            names = []
            for _ in range(n):
                names.append(await executor.run(Computation(where, name="where", resources=resources)))
            return names, await executor.slots(resources)
        finally:
            await executor.close()

    on_gpu, pool = asyncio.run(run_each({"GPU": 1}, 4))
    assert on_gpu == ["gpu"] * 4 and pool == ("GPU=1", 1)
    anywhere, pool = asyncio.run(run_each({}, 6))
    assert set(anywhere) <= {"plain", "gpu"} and pool == ("any worker", 2)

    dask_cluster.kill("gpu")
    dask_cluster.wait_for_workers(1)
    fallback, pool = asyncio.run(run_each({"GPU": 1}, 2))
    assert fallback == ["plain", "plain"] and pool == ("any worker", 1)

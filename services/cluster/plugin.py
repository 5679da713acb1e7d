"""The worker plugin that loads what a driver's computations need, once per Dask worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from distributed import WorkerPlugin


def load_name(load: Callable[[], object]) -> str:
    return f"{load.__module__}.{load.__qualname__}"


class WarmUp(WorkerPlugin):
    """Runs each load (:attr:`labweave.drivers.compute.Computation.warmups`) on every worker as it joins.

    A load fills its module's once-per-process cache (the CHGNet model, the
    OKane2022 parameter set), so the computations the worker runs later find it
    there. It runs in a thread: the worker keeps answering the scheduler
    meanwhile. The plugin's name is made of the loads' names, so tenants
    sharing a cluster register it once (``idempotent``).
    """

    idempotent = True

    def __init__(self, loads: tuple[Callable[[], object], ...]):
        self.loads = tuple(loads)
        self.name = "labweave-warmup:" + ",".join(load_name(load) for load in self.loads)

    async def setup(self, worker) -> None:
        for load in self.loads:
            await asyncio.to_thread(load)

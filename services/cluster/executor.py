"""A Dask cluster as the executor of a tenant's simulations.

``labweave tenant run emt --dask-scheduler tcp://HOST:8786`` (or
``--dask-scheduler-file PATH``) hands each simulation to that cluster; by
default (``--dask-scheduler local``) the tenant starts an embedded
``LocalCluster``; ``--dask-scheduler none`` runs them in a thread of the
tenant, without Dask (:class:`labweave.drivers.compute.InProcess`).

The embedded cluster is threads-based (``processes=False``): one worker with
one thread inside the tenant's process. The demo runs four simulating tenants
on two cores; a worker process each would double the processes, load PyBaMM
or torch and CHGNet twice per tenant, and buy nothing on two cores (each
tenant ran one simulation at a time before, and does so still). A user who
wants more attaches a real cluster.

The server's leases stay the truth: a computation is submitted with
``retries=0`` and a unique key (never merged with another request's), the
embedded scheduler fails a task at its first lost worker
(``allowed-failures: 0``, the setting a real scheduler should be given too),
and a lost worker, a scheduler gone or a cancelled task fail the request as
retryable, so the server offers it again; a tenant that dies lets its leases
expire. Nothing on a worker posts a result: only the tenant that holds the
lease does, once.

Routing: a computation naming worker resources (the MLIP's ``{"GPU": 1}``)
is submitted with them where at least one worker of the cluster has them,
and without them otherwise, so it runs on a GPU worker if there is one and
anywhere if there is none. If the last such worker leaves while it waits,
it is cancelled and failed as retryable.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import dask
from distributed import Client, LocalCluster
from distributed.client import FutureCancelledError
from distributed.comm.core import CommClosedError
from distributed.scheduler import KilledWorker

from labweave.drivers.base import InstrumentFault, InstrumentStopped
from labweave.drivers.compute import Computation, Executor

from ..tenant.context import current_request
from . import metrics
from .plugin import WarmUp, load_name

log = logging.getLogger(__name__)

#: The scheduler setting that keeps Dask from re-running a lost worker's task (the lease decides).
ALLOWED_FAILURES = "distributed.scheduler.allowed-failures"
#: What ``--dask-scheduler`` accepts besides an address.
LOCAL, NONE = "local", "none"
#: Address schemes of a Dask scheduler.
SCHEMES = ("tcp://", "tls://", "ucx://", "ws://", "wss://", "inproc://")
#: How long the worker table read from the scheduler is reused, s.
WORKERS_TTL = 0.5
#: How often a waiting computation checks its stop flag, and its routed workers, s.
TICK = 0.1
ROUTE_CHECK = 5.0


class ClusterUnavailable(Exception):
    """The Dask scheduler could not be reached (or the embedded cluster not started)."""


def check_scheduler(address: str) -> str:
    """``address`` if it is ``local``, ``none`` or a scheduler address.

    Raises:
        ValueError: naming what is accepted.
    """
    text = address.strip()
    if text in (LOCAL, NONE) or (text.startswith(SCHEMES) and len(text) > text.index("://") + 3):
        return text
    raise ValueError(f"--dask-scheduler {address!r}: give {LOCAL!r}, {NONE!r} or an address such as "
                     f"tcp://HOST:8786 ({', '.join(s[:-3] for s in SCHEMES)})")


def _allowed_failures(dask_scheduler) -> int:
    return dask_scheduler.allowed_failures


def _fits(worker: Mapping[str, Any], wanted: Mapping[str, float]) -> int:
    """How many computations wanting ``wanted`` the worker runs at once (0: it lacks a resource)."""
    have = worker.get("resources") or {}
    fit = min(int(have.get(name, 0) // amount) for name, amount in wanted.items() if amount > 0)
    return min(int(worker.get("nthreads", 1)), fit)


def pool_of(workers: Mapping[str, Mapping[str, Any]], wanted: Mapping[str, float]) -> tuple[str, int, bool]:
    """Where computations wanting ``wanted`` run on a cluster of ``workers`` (the scheduler's worker table).

    Returns:
        The pool's name, its slots (threads, or resource units where fewer), and whether the
        computation is submitted with its resources (some worker has them).
    """
    wanted = {k: v for k, v in wanted.items() if v > 0}
    if wanted:
        slots = sum(_fits(w, wanted) for w in workers.values())
        if slots:
            return ",".join(f"{k}={v:g}" for k, v in sorted(wanted.items())), slots, True
    return "any worker", sum(int(w.get("nthreads", 1)) for w in workers.values()), False


class DaskExecutor(Executor):
    """Runs computations on a Dask cluster through an asynchronous client.

    Build it with :meth:`connect`; :meth:`close` it at the end.
    """

    remote = True

    def __init__(self, client: Client, cluster: LocalCluster | None = None):
        self.client = client
        self.cluster = cluster
        self._prefix = f"labweave-{uuid.uuid4().hex[:8]}"
        self._prepared: set[str] = set()
        self._workers: dict[str, dict[str, Any]] = {}
        self._workers_at = -1.0
        self._workers_lock = asyncio.Lock()

    @classmethod
    async def connect(cls, scheduler: str = LOCAL, scheduler_file: Path | None = None, timeout: float = 20.0,
                      local_workers: int = 1, local_processes: bool = False) -> DaskExecutor:
        """A client of the scheduler at ``scheduler`` (or in ``scheduler_file``), or of an embedded cluster.

        Args:
            local_workers, local_processes: the embedded cluster's one-thread workers, and whether each is
                a process of its own (the tenant uses one thread in its own process; the benchmark more).

        Raises:
            ClusterUnavailable: naming the scheduler and why.
        """
        cluster = None
        where = str(scheduler_file) if scheduler_file else scheduler
        try:
            if scheduler_file is not None:
                client = await Client(scheduler_file=str(scheduler_file), asynchronous=True, timeout=timeout)
            elif scheduler == LOCAL:
                with dask.config.set({ALLOWED_FAILURES: 0}):
                    cluster = await LocalCluster(n_workers=local_workers, threads_per_worker=1,
                                                 processes=local_processes,
                                                 dashboard_address=":0", asynchronous=True)
                client = await Client(cluster, asynchronous=True)
            else:
                client = await Client(check_scheduler(scheduler), asynchronous=True, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            if cluster is not None:
                await _closed(cluster.close())
            raise ClusterUnavailable(f"Dask scheduler {where}: {exc}") from None
        executor = cls(client, cluster)
        allowed = await client.run_on_scheduler(_allowed_failures)
        if allowed:
            log.warning("the Dask scheduler %s re-runs a lost worker's task up to %d times (%s); start it with "
                        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0 so the server's lease alone decides",
                        where, allowed, ALLOWED_FAILURES)
        log.info("computations go to the Dask scheduler %s (%s)", client.scheduler.address,
                 "embedded, threads" if cluster else where)
        return executor

    # -- the cluster's workers -------------------------------------------
    async def workers(self) -> dict[str, dict[str, Any]]:
        """The scheduler's worker table (address -> nthreads, resources...), at most :data:`WORKERS_TTL` old."""
        async with self._workers_lock:
            if time.monotonic() - self._workers_at > WORKERS_TTL:
                identity = await self.client.scheduler.identity()  # every worker (newer Dask: n_workers=-1 by default)
                self._workers = dict(identity.get("workers", {}))
                self._workers_at = time.monotonic()
            return self._workers

    async def slots(self, resources: Mapping[str, float]) -> tuple[str, int]:
        """The pool and its slots; none while the scheduler cannot be reached (nothing more is claimed)."""
        try:
            workers = await self.workers()
        except (OSError, CommClosedError, TimeoutError) as exc:
            log.warning("Dask scheduler unreachable (%s): claiming nothing until it answers", exc)
            workers = {}
        name, slots, _ = pool_of(workers, resources)
        return name, slots

    # -- running -----------------------------------------------------------
    async def prepare(self, warmups: tuple[Callable[[], object], ...]) -> None:
        """Register the plugin running ``warmups`` on every worker, present and future (once per set)."""
        missing = tuple(w for w in warmups if load_name(w) not in self._prepared)
        if not missing:
            return
        self._prepared.update(load_name(w) for w in missing)
        plugin = WarmUp(missing)
        log.info("loading on every worker: %s", ", ".join(load_name(w) for w in missing))
        await self.client.register_plugin(plugin, name=plugin.name)

    async def run(self, computation: Computation, stop: threading.Event | None = None) -> Any:
        await self.prepare(computation.warmups)
        _, _, routed = pool_of(await self.workers(), computation.resources)
        resources = dict(computation.resources) if routed else None
        # the request in the key: the scheduler's task list says which request each worker computes
        key = f"{computation.name}-{current_request.get() or self._prefix}-{uuid.uuid4().hex[:12]}"
        future = self.client.submit(computation.fn, *computation.args, key=key, pure=False, retries=0,
                                    resources=resources)
        metrics.count("submitted", computation.name)
        waiter = asyncio.ensure_future(future.result())
        checked = time.monotonic()
        try:
            while not waiter.done():
                await asyncio.wait({waiter}, timeout=TICK)
                if waiter.done():
                    break
                if stop is not None and stop.is_set():
                    raise InstrumentStopped(f"{computation.name} stopped (its Dask task is cancelled)")
                if resources and time.monotonic() - checked > ROUTE_CHECK:
                    checked = time.monotonic()
                    if not pool_of(await self.workers(), resources)[2]:
                        raise InstrumentFault(f"{computation.name}: no worker with {resources} is left in the "
                                              "Dask cluster", retryable=True)
            value = waiter.result()
        except KilledWorker as exc:
            metrics.count("failed", computation.name)
            raise InstrumentFault(f"{computation.name}: the Dask worker running it was lost ({exc})",
                                  retryable=True) from None
        except (FutureCancelledError, CommClosedError, OSError) as exc:
            metrics.count("failed", computation.name)
            raise InstrumentFault(f"{computation.name}: the Dask cluster lost it ({type(exc).__name__}: {exc})",
                                  retryable=True) from None
        except BaseException:  # its own error, a stop, a lost lease (cancelled): counted, passed on
            metrics.count("failed", computation.name)
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
                try:
                    await asyncio.shield(future.cancel())
                except Exception as exc:  # the cluster may be gone: nothing is left to cancel
                    log.debug("cancelling %s: %s", key, exc)
        metrics.count("finished", computation.name)
        return value

    async def close(self) -> None:
        await _closed(self.client.close())
        if self.cluster is not None:
            await _closed(self.cluster.close())


async def _closed(closing: Awaitable[None] | None) -> None:
    """Wait for a Dask ``close()``, which an asynchronous client or cluster returns as an awaitable."""
    if closing is not None:
        await closing

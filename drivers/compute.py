"""Where a driver's heavy computation runs: this process, or a cluster.

A simulated backend whose work is a pure computation (a PyBaMM cycling test,
a relaxation and equation of state) describes it as a :class:`Computation`:
a module-level function and its inputs, both picklable, so that the same call
can run on a worker thread of this process or on a worker of a Dask cluster.
The backend keeps its state (a cell's test count, the seed of its noise, the
shelf) on its side and hands the function everything the result depends on,
so a request gives the same result wherever it is computed.

What cannot cross a process boundary (a stop flag, a progress callback) is
given as :attr:`Computation.local` and used only when the computation runs
here; a remote executor stops a computation by cancelling it instead.

The executor used by default runs the computation in a thread of this
process; the tenant daemon swaps in a Dask one
(:mod:`labweave.services.cluster`). Drivers never import Dask.
"""

from __future__ import annotations

import abc
import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Computation:
    """One computation of a driver, ready to run anywhere.

    Attributes:
        fn: a module-level function (picklable by reference), called as ``fn(*args, **local)`` here
            and ``fn(*args)`` on a cluster.
        args: its inputs: picklable values carrying everything the result depends on (seeds included).
        name: a short label (the prefix of its Dask key, its counters' label).
        resources: worker resources it prefers on a cluster (``{"GPU": 1}``); used only where some
            worker of the cluster has them, so it runs anywhere on a cluster without them.
        warmups: functions that load what ``fn`` needs once per process (a model, a parameter set);
            a cluster runs them once on every worker, before any computation.
        local: keyword arguments given only when it runs in this process (a stop check, a progress
            reporter); ``fn`` must give the same result without them.
    """

    fn: Callable[..., Any]
    args: tuple = ()
    name: str = "computation"
    resources: Mapping[str, float] = field(default_factory=dict)
    warmups: tuple[Callable[[], object], ...] = ()
    local: Mapping[str, Any] = field(default_factory=dict)


class Executor(abc.ABC):
    """Runs :class:`Computation` s for the backends given it."""

    #: True where computations leave this process (their ``local`` arguments are then dropped).
    remote: ClassVar[bool] = False

    @abc.abstractmethod
    async def run(self, computation: Computation, stop: threading.Event | None = None) -> Any:
        """The value of the computation.

        Args:
            computation: what to run.
            stop: set by a safe stop; a remote computation is then cancelled and
                :class:`~labweave.drivers.base.InstrumentStopped` raised.

        Raises:
            Whatever ``fn`` raises; :class:`~labweave.drivers.base.InstrumentFault` (retryable) where the
            executor lost the computation (a worker died, the cluster went away).
        """

    async def prepare(self, warmups: tuple[Callable[[], object], ...]) -> None:
        """Load what the computations will need, ahead of the first (nothing to do here by default)."""

    async def slots(self, resources: Mapping[str, float]) -> tuple[str, int]:
        """The pool computations wanting ``resources`` run in, and how many it runs at once.

        Returns:
            The pool's name (computations of one pool share its slots) and its slot count.
        """
        return "this process", 1

    async def close(self) -> None:
        """Release the executor's connections (and an embedded cluster)."""


class InProcess(Executor):
    """Runs each computation in a worker thread of this process (the event loop stays free).

    One slot: an instrument served this way runs one request at a time, as it always has.
    """

    async def run(self, computation: Computation, stop: threading.Event | None = None) -> Any:
        return await asyncio.to_thread(computation.fn, *computation.args, **computation.local)


#: The executor of backends nobody gave another one.
IN_PROCESS = InProcess()

"""What a labweave process sets once, when it starts: no telemetry prompt, and its thread limits.

Libraries read these settings process-wide, so they are set once at the start
of a command (the ``labweave`` CLI does it before any command runs; pytest's
conftest does it for the tests), never toggled around a call: a toggle in one
thread changes the limit under every other thread of the process.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

#: Environment variables the BLAS and OpenMP runtimes (and torch, at its import) read their thread count from.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def opt_out_of_telemetry() -> None:
    """Tell PyBaMM not to ask about usage data: on import it would prompt in a terminal and wait 10 s.

    An operator's explicit ``PYBAMM_DISABLE_TELEMETRY`` is left alone.
    """
    os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")


def configure_threads(threads: int) -> None:
    """Limit the process's compute threads (torch, BLAS, OpenMP) to ``threads``.

    The lab's computations are small dense algebra (GP fits of tens to
    hundreds of points, few-atom relaxations, PyBaMM's solver), fastest on one
    thread on a shared machine: a 32-atom EMT relaxation took 18 s with two
    BLAS threads on a loaded 2-core machine and 0.7 s with one; a CHGNet single
    point 3.5-8 s with two torch threads and 0.35 s with one. The limit applies
    to libraries already loaded (through threadpoolctl and torch) and, through
    the environment, to those loaded later and to child processes.

    Args:
        threads: at least 1.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)  # applied now, for good: the returned context is never exited
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    log.debug("compute threads limited to %d", threads)

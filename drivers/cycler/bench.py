"""Timing of the simulated cycler: ``python -m labweave.drivers.cycler.bench``.

The figure that matters is the wall time of a 100-cycle test (three
formation cycles at C/10, then 100 cycles at 1C/1C with CV holds to C/20) of
a nominal cell through the whole frontend; PyBaMM's import and the loading
of the parameter set happen before the clock starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from labweave.drivers.cycler.frontend import Cycler  # noqa: E402
from labweave.drivers.cycler.sim import SimulatedCyclerBackend  # noqa: E402

log = logging.getLogger(__name__)


def _request(cycles: int, uuid: str) -> dict:
    return {
        "cycling_protocol": "BIG-MAP-Standard",
        "number_cycles": cycles,
        "cell_info": {"uuid": uuid, "cell_name": "CR2032"},
        "location": {"address": "labweave simulated lab", "detail_1": "cycler"},
        "reservation_number": "bench",
    }


async def _time_test(cycles: int) -> tuple[float, float, dict]:
    cycler = Cycler(SimulatedCyclerBackend(None, seed=0))
    await cycler.backend.setup()
    start, start_cpu = time.perf_counter(), time.process_time()
    result = await cycler.perform("capacity", "cycling", _request(cycles, f"BENCH-{cycles}"))
    return time.perf_counter() - start, time.process_time() - start_cpu, result


def run_benchmarks() -> list[dict]:
    """Time simulated cycling tests.

    Returns:
        One dict per figure: ``{"benchmark": name, "seconds": wall time, ...}``;
        ``cpu_seconds`` (CPU time of the process, all threads) is less
        sensitive than wall time to other work on a shared machine.
    """
    figures = []
    for cycles in (100,):
        seconds, cpu_seconds, result = asyncio.run(_time_test(cycles))
        figures.append(
            {
                "benchmark": f"cycler_{cycles}_cycles",
                "seconds": round(seconds, 3),
                "cpu_seconds": round(cpu_seconds, 3),
                "cycles": len(result["capacity_list"]),
                "retention": round(result["capacity_list"][-1] / result["capacity_list"][0], 4),
            }
        )
        log.info("cycler: %d cycles in %.2f s", cycles, seconds)
    return figures


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.stdout.write(json.dumps(run_benchmarks(), indent=1) + "\n")

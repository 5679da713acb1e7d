"""Timing of the PLD growth model: ``python -m labweave.drivers.pld.bench``."""

from __future__ import annotations

import asyncio
import json
import time

from labweave.drivers.pld.frontend import PldChamber
from labweave.drivers.pld.sim import SimulatedPldBackend

#: A layer-by-layer SrTiO3 homoepitaxy recipe of 200 pulses.
RECIPE = {
    "target": "SrTiO3",
    "substrate": "SrTiO3",
    "laser_fluence": 2.0,
    "substrate_temperature": 1000.0,
    "oxygen_pressure": 1.0,
    "repetition_rate": 1.0,
    "pulses": 200,
}


def run_benchmarks() -> list[dict]:
    """Time a 200-pulse growth through the chamber frontend.

    Returns:
        One record per benchmark: name, wall seconds, CPU seconds, and the film grown.
    """
    chamber = PldChamber(SimulatedPldBackend(seed=1))
    wall, cpu = time.perf_counter(), time.process_time()
    result = asyncio.run(chamber.perform("thin_film", "pld_growth", RECIPE))
    return [
        {
            "benchmark": "pld_200_pulses",
            "seconds": time.perf_counter() - wall,
            "cpu_seconds": time.process_time() - cpu,
            "thickness_unit_cells": result["thickness_unit_cells"],
            "growth_mode": result["growth_mode"],
            "rheed_oscillations": result["rheed_oscillations"],
            "trace_points": len(result["rheed"]["time"]),
        }
    ]


if __name__ == "__main__":
    print(json.dumps(run_benchmarks(), indent=2))

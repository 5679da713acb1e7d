"""``labweave bench drivers``: how long the simulated instruments take, through their frontends.

One record per figure, each with its wall and CPU seconds (CPU time, all threads,
is less sensitive than wall time to other work on a shared machine):

- ``cycler``: a 100-cycle test of a nominal cell (three formation cycles at
  C/10, then 100 cycles at 1C/1C with CV holds to C/20); PyBaMM's import and
  the loading of the parameter set happen before the clock starts.
- ``pld``: a 200-pulse layer-by-layer SrTiO3 homoepitaxy.
- ``atomistic``: an EMT relaxation of a random 32-atom Cu3Au cell, an fcc
  equation of state, loading CHGNet, a CHGNet single point and relaxation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

#: A layer-by-layer SrTiO3 homoepitaxy recipe of 200 pulses.
PLD_RECIPE = {
    "target": "SrTiO3",
    "substrate": "SrTiO3",
    "laser_fluence": 2.0,
    "substrate_temperature": 1000.0,
    "oxygen_pressure": 1.0,
    "repetition_rate": 1.0,
    "pulses": 200,
}
CYCLES = 100


def _timed(name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    extra = work()
    return {"benchmark": name, "seconds": round(time.perf_counter() - wall, 3),
            "cpu_seconds": round(time.process_time() - cpu, 3), **extra}


def time_cycler() -> list[dict[str, Any]]:
    """A 100-cycle test through the cycler's frontend: its seconds, cycles and capacity retention."""
    from labweave.drivers.cycler.frontend import Cycler
    from labweave.drivers.cycler.sim import SimulatedCyclerBackend

    request = {
        "cycling_protocol": "BIG-MAP-Standard",
        "number_cycles": CYCLES,
        "cell_info": {"uuid": f"BENCH-{CYCLES}", "cell_name": "CR2032"},
        "location": {"address": "labweave simulated lab", "detail_1": "cycler"},
        "reservation_number": "bench",
    }

    async def cycle() -> tuple[float, float, list[float]]:
        cycler = Cycler(SimulatedCyclerBackend(None, seed=0))
        await cycler.backend.setup()  # PyBaMM's parameter set: before the clock starts
        wall, cpu = time.perf_counter(), time.process_time()
        result = await cycler.perform("capacity", "cycling", request)
        return time.perf_counter() - wall, time.process_time() - cpu, result["capacity_list"]

    seconds, cpu_seconds, capacity = asyncio.run(cycle())
    record = {"benchmark": f"cycler_{CYCLES}_cycles", "seconds": round(seconds, 3),
              "cpu_seconds": round(cpu_seconds, 3), "cycles": len(capacity),
              "retention": round(capacity[-1] / capacity[0], 4)}
    log.info("cycler: %d cycles in %.2f s", CYCLES, record["seconds"])
    return [record]


def time_pld() -> list[dict[str, Any]]:
    """A 200-pulse growth through the chamber's frontend: its seconds and the film grown."""
    from labweave.drivers.pld.frontend import PldChamber
    from labweave.drivers.pld.sim import SimulatedPldBackend

    chamber = PldChamber(SimulatedPldBackend(seed=1))

    def grow() -> dict[str, Any]:
        result = asyncio.run(chamber.perform("thin_film", "pld_growth", PLD_RECIPE))
        return {
            "thickness_unit_cells": result["thickness_unit_cells"],
            "growth_mode": result["growth_mode"],
            "rheed_oscillations": result["rheed_oscillations"],
            "trace_points": len(result["rheed"]["time"]),
        }

    return [_timed("pld_200_pulses", grow)]


def time_atomistic() -> list[dict[str, Any]]:
    """An EMT relaxation, an fcc EOS, CHGNet's load, a CHGNet single point and a CHGNet relaxation."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from labweave.drivers.atomistic.emt import EmtBackend
    from labweave.drivers.atomistic.eos import equation_of_state, relax
    from labweave.drivers.atomistic.mlip import ChgnetBackend, chgnet_model
    from labweave.drivers.atomistic.structures import build_alloy
    from labweave.schemas.atomistic import AlloyPrototype

    alloy = AlloyPrototype(composition={"Cu": 0.75, "Au": 0.25}, supercell=2, seed=0)  # 32 atoms
    emt, chgnet = EmtBackend(), ChgnetBackend()

    def relaxation(backend: Any) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            atoms = build_alloy(alloy)
            atoms.calc = backend.calculator()
            outcome = relax(atoms, fmax=0.02, max_steps=200)
            return {"atoms": len(atoms), "steps": outcome.steps, "converged": outcome.converged}

        return run

    def fcc_eos() -> dict[str, Any]:
        atoms = bulk("Cu", "fcc", a=3.6)
        atoms.calc = EMT()
        fit, points = equation_of_state(atoms)
        return {"points": points, "lattice_constant": (4 * fit.volume) ** (1 / 3), "bulk_modulus": fit.bulk_modulus}

    def single_point() -> dict[str, Any]:
        atoms = build_alloy(alloy)
        atoms.calc = chgnet.calculator()
        energy = atoms.get_potential_energy()
        return {"atoms": len(atoms), "energy_per_atom": float(energy) / len(atoms)}

    records = [_timed("emt_relax_32_atoms", relaxation(emt)), _timed("emt_fcc_eos", fcc_eos),
               _timed("chgnet_model_load", lambda: {"parameters": chgnet_model().n_params})]
    single_point()  # warm up the graph converter
    records.append(_timed("chgnet_single_point_32_atoms", single_point))
    records.append(_timed("chgnet_relax_32_atoms", relaxation(chgnet)))
    return records


#: The instruments timed, by the name ``--which`` takes.
INSTRUMENTS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "cycler": time_cycler,
    "pld": time_pld,
    "atomistic": time_atomistic,
}


def run(which: Iterable[str] = tuple(INSTRUMENTS)) -> list[dict[str, Any]]:
    """Time the named instruments, in order.

    Raises:
        ValueError: naming an instrument that is not in :data:`INSTRUMENTS`.
    """
    chosen = list(which)
    unknown = [name for name in chosen if name not in INSTRUMENTS]
    if unknown or not chosen:
        raise ValueError(f"--which: unknown {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"choose from {', '.join(INSTRUMENTS)}")
    records = []
    for name in chosen:
        with contextlib.redirect_stdout(sys.stderr):  # libraries' own chatter (CHGNet's banner) stays off the figures
            records.extend(INSTRUMENTS[name]())
    return records

"""Timing of the atomistic methods: ``python -m labweave.drivers.atomistic.bench``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from labweave.drivers.atomistic.emt import EmtBackend
from labweave.drivers.atomistic.eos import equation_of_state, relax
from labweave.drivers.atomistic.mlip import ChgnetBackend, chgnet_model
from labweave.drivers.atomistic.structures import build_alloy
from labweave.schemas.atomistic import AlloyPrototype

#: A random 32-atom Cu3Au cell (fcc, 2x2x2 conventional cells).
ALLOY = AlloyPrototype(composition={"Cu": 0.75, "Au": 0.25}, supercell=2, seed=0)


def _timed(name: str, work: Callable[[], dict]) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    extra = work()
    return {"benchmark": name, "seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu, **extra}


def _relaxation(backend, atoms: Atoms) -> dict:
    with backend.compute_threads():
        atoms.calc = backend.calculator()
        outcome = relax(atoms, fmax=0.02, max_steps=200)
    return {"atoms": len(atoms), "steps": outcome.steps, "converged": outcome.converged}


def run_benchmarks() -> list[dict]:
    """Time an EMT relaxation, CHGNet single point and relaxation, and an fcc EOS.

    Returns:
        One record per benchmark with wall and CPU seconds.
    """
    emt, chgnet = EmtBackend(), ChgnetBackend()
    records = [_timed("emt_relax_32_atoms", lambda: _relaxation(emt, build_alloy(ALLOY)))]

    def fcc_eos() -> dict:
        atoms = bulk("Cu", "fcc", a=3.6)
        atoms.calc = EMT()
        fit, points = equation_of_state(atoms)
        return {"points": points, "lattice_constant": (4 * fit.volume) ** (1 / 3), "bulk_modulus": fit.bulk_modulus}

    records.append(_timed("emt_fcc_eos", fcc_eos))
    records.append(_timed("chgnet_model_load", lambda: {"parameters": chgnet_model().n_params}))

    def single_point() -> dict:
        atoms = build_alloy(ALLOY)
        with chgnet.compute_threads():
            atoms.calc = chgnet.calculator()
            energy = atoms.get_potential_energy()
        return {"atoms": len(atoms), "energy_per_atom": float(energy) / len(atoms)}

    single_point()  # warm up the graph converter
    records.append(_timed("chgnet_single_point_32_atoms", single_point))
    records.append(_timed("chgnet_relax_32_atoms", lambda: _relaxation(chgnet, build_alloy(ALLOY))))
    return records


if __name__ == "__main__":
    print(json.dumps(run_benchmarks(), indent=2))

"""The perovskite pool and its CHGNet bulk moduli (``python -m benchmarks.perovskite_table``).

The pool: cubic ABO3 perovskites whose A cation (12-fold site) and B cation
(6-fold site) have Shannon radii for a split of the charge of O3 (1+5, 2+4,
3+3; :func:`labweave.optimizer.elements.perovskite`), both elements handled
by the lab's MLIP tenant (:func:`labweave.drivers.atomistic.mlip.chgnet_elements`),
and a Goldschmidt tolerance factor between 0.82 and 1.10, the usual window
of perovskite formability. Each candidate's 5-atom cubic cell (A at the
corner, B at the body centre, O at the face centres; started at
``a = 2 (r_B + r_O)``) goes through the MLIP tenant's bulk-properties
procedure (:class:`~labweave.drivers.atomistic.mlip.ChgnetBackend`:
relaxation of the volume, seven-point Birch-Murnaghan equation of state),
exactly what a campaign request computes.

The table is written to ``benchmarks/data/perovskite_bulk_moduli_chgnet.json``
after every candidate, in a seeded random order, and a rerun resumes where it
stopped (a table stopped part-way is a random sample of the pool). The SISSO
search study replays campaigns on it (``python -m benchmarks.sisso_search perovskite``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labweave.drivers.atomistic.mlip import ChgnetBackend, chgnet_elements
from labweave.optimizer.elements import PEROVSKITE_FEATURES, perovskite
from labweave.schemas.atomistic import BulkPropertiesParameters, CrystalStructure

logger = logging.getLogger(__name__)

TABLE = Path(__file__).resolve().parent / "data" / "perovskite_bulk_moduli_chgnet.json"
A_CATIONS = tuple("Na K Rb Cs Ag Tl Ca Sr Ba Pb Cd Eu La Ce Pr Nd Sm Gd Bi Y".split())
B_CATIONS = tuple(
    "V Nb Ta Sb Mo W Ti Zr Hf Sn Ge Mn Ru Ir Pt Pb Ce Tc Os Rh Pd Si Al Ga In Sc Y Cr Fe Co Ni Lu Yb Tl Bi Mg Cu Zn".split()
)
TOLERANCE_WINDOW = (0.82, 1.10)
FMAX = 0.02


def pool() -> list[tuple[str, str]]:
    """The candidates, ``(A, B)`` in the order of the cation lists."""
    handled = chgnet_elements()
    out = []
    for a in A_CATIONS:
        for b in B_CATIONS:
            if a == b or a not in handled or b not in handled:
                continue
            try:
                p = perovskite(a, b)
            except ValueError:
                continue
            if TOLERANCE_WINDOW[0] <= p.tolerance <= TOLERANCE_WINDOW[1]:
                out.append((a, b))
    return out


def cubic_cell(a: str, b: str) -> CrystalStructure:
    """The 5-atom cubic cell of ABO3, lattice constant from the ionic radii."""
    p = perovskite(a, b)
    a0 = 2.0 * (p.r_b + p.r_o)
    fractional = [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)]
    return CrystalStructure(
        cell=[[a0, 0, 0], [0, a0, 0], [0, 0, a0]],
        positions=[[a0 * x for x in f] for f in fractional],
        symbols=[a, b, "O", "O", "O"],
    )


def compute_table(limit: int | None = None, path: Path = TABLE) -> dict[str, Any]:
    """Compute (or resume) the table; returns it."""
    table: dict[str, Any] = {
        "method": "chgnet",
        "procedure": f"MLIP tenant bulk_properties, 5-atom cubic cell, fmax {FMAX} eV/A",
        "units": dict(PEROVSKITE_FEATURES),
        "rows": [],
    }
    if path.exists():
        table = json.loads(path.read_text(encoding="utf-8"))
    done = {(r["A"], r["B"]) for r in table["rows"]}
    backend = ChgnetBackend()
    # a seeded order, so that a table stopped part-way is a random sample of the pool
    candidates = pool()
    order = np.random.default_rng(0).permutation(len(candidates))
    todo = [candidates[i] for i in order if candidates[i] not in done][:limit]
    for k, (a, b) in enumerate(todo):
        p = perovskite(a, b)
        start = time.perf_counter()
        row: dict[str, Any] = {"A": a, "B": b, "n_A": p.n_a, "n_B": p.n_b, "features": p.features()}
        try:
            params = BulkPropertiesParameters(structure=cubic_cell(a, b), fmax=FMAX)
            result = asyncio.run(backend.bulk_properties(params))
            row |= {
                "bulk_modulus": result.bulk_modulus,
                "lattice_constant": round(result.volume_per_atom * 5, 6) ** (1 / 3),
                "formation_energy_per_atom": result.formation_energy_per_atom,
                "converged": result.convergence.converged,
            }
        except Exception as exc:  # a failed calculation is a row too: the pool says so
            row |= {"bulk_modulus": None, "error": str(exc)}
        row["seconds"] = round(time.perf_counter() - start, 2)
        table["rows"].append(row)
        path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
        logger.warning("%d/%d %s%sO3: B = %s GPa (%.1f s)", k + 1, len(todo), a, b, row.get("bulk_modulus"), row["seconds"])
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.perovskite_table", description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="compute at most this many new candidates")
    parser.add_argument("--pool", action="store_true", help="only print the pool's size and cations")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.pool:
        candidates = pool()
        sys.stdout.write(json.dumps({"candidates": len(candidates), "A": sorted({a for a, _ in candidates}),
                                     "B": sorted({b for _, b in candidates})}) + "\n")
        return
    table = compute_table(args.limit)
    rows = [r for r in table["rows"] if r.get("bulk_modulus") is not None]
    seconds = sum(r["seconds"] for r in table["rows"])
    sys.stdout.write(json.dumps({"candidates": len(table["rows"]), "computed": len(rows),
                                 "seconds_total": round(seconds, 1)}) + "\n")


if __name__ == "__main__":
    main()

"""The DFT (PBE) table of the ordered fcc alloy pool: the truth of the fair alloy study.

``python -m benchmarks.alloy_dft_table`` computes, with GPAW through the DFT
driver's own function (:func:`labweave.drivers.atomistic.dft.dft_bulk_properties`),
the bulk properties of the ordered 4-atom cubic cell (L1_2, L1_0 and their
ternary kin, the cells of ``fcc_alloys_emt_chgnet_ordered.json``) of every
binary and ternary of Ag, Al, Au, Cu, Ni, Pd and Pt with fractions in quarters,
and stores each whole result (energies, the fitted equation of state, the
elemental references, the DFT settings and mesh, the CPU seconds) in
``benchmarks/data/fcc_alloys_dft_pbe_ordered4.json``.

The run is resumable and can be done in parts: the file is rewritten after
every cell, cells already present are skipped, and binaries come before
ternaries, so a partial table is a complete table of the binaries as soon as
those are done. ``--max-components 2`` stops after the binaries; ``--limit N``
after N new cells; ``--shard K/N`` lets N processes fill the table side by side
(each adds its entries under a file lock). One process computes one cell at a time on one thread
(``OMP_NUM_THREADS`` and the BLAS pools are pinned to one); the elemental
references are computed once per process and cached.

Settings (:data:`SETTINGS`): PBE, plane waves at 300 eV, 2.0 k-points per
reciprocal angstrom (a 4 x 4 x 4 mesh for these cells), 0.1 eV Fermi-Dirac
smearing extrapolated to zero width, forces relaxed to 0.1 eV/A. Chosen so that
a 4-atom cell takes one to four CPU minutes here (spin-polarised cells with Ni
the dearest); ``--convergence CELL`` recomputes one cell at tighter settings
and prints how far its mixing energy, lattice constant and bulk modulus move,
which is the convergence the table states (see the README's DFT section).

Usage, from the root of a clone::

    python -m benchmarks.alloy_dft_table                       # compute or complete the table
    python -m benchmarks.alloy_dft_table --max-components 2    # the binaries only
    python -m benchmarks.alloy_dft_table --status              # how far it is
    python -m benchmarks.alloy_dft_table --convergence Cu3Au   # the settings' convergence on one cell
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.fidelity import composition_key
from labweave.optimizer.pools import composition_grid

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
#: The stored table.
DFT_TABLE_PATH = DATA_DIR / "fcc_alloys_dft_pbe_ordered4.json"
#: The pool: the elements of the EMT/CHGNet table, fractions in quarters, binaries and ternaries.
ELEMENTS: tuple[str, ...] = ("Ag", "Al", "Au", "Cu", "Ni", "Pd", "Pt")
DIVISIONS = 4
#: The cell and the DFT settings of every entry (a table made otherwise is refused, not mixed).
SETTINGS: dict[str, Any] = {
    "prototype": "fcc",
    "supercell": 1,
    "seed": 0,
    "fmax": 0.1,
    "xc": "PBE",
    "cutoff": 300.0,
    "kpoint_density": 2.0,
    "smearing": 0.1,
}
#: How the elemental references are computed (recorded in the table: a table made otherwise is refused).
REFERENCES = "each element in the alloy's own 4-atom cubic cell on the alloy's k-point mesh"
#: Tighter settings of the convergence check.
TIGHT: dict[str, Any] = {"cutoff": 450.0, "kpoint_density": 3.0}


def pool(max_components: int = 3) -> list[dict[str, float]]:
    """The pool's compositions (zero fractions dropped), binaries first."""
    return [
        {e: x for e, x in c.items() if x > 0}
        for c in composition_grid(list(ELEMENTS), DIVISIONS, 2, max_components)
    ]


def parameters(composition: Mapping[str, float], **overrides: Any) -> Any:
    """The DFT request parameters of one cell of the table."""
    from labweave.schemas.atomistic import DftBulkPropertiesParameters

    s = {**SETTINGS, **overrides}
    return DftBulkPropertiesParameters.model_validate(
        {
            "alloy": {"composition": dict(composition), "prototype": s["prototype"],
                      "supercell": s["supercell"], "seed": s["seed"]},
            "fmax": s["fmax"],
            "xc": s["xc"],
            "cutoff": s["cutoff"],
            "kpoint_density": s["kpoint_density"],
            "smearing": s["smearing"],
        }
    )


def load_table(path: Path = DFT_TABLE_PATH) -> dict[str, Any]:
    """The stored table (``{"settings", "entries": [{"composition", "dft": result}]}``).

    Raises:
        FileNotFoundError: naming the command that makes it.
    """
    if not path.exists():
        raise FileNotFoundError(f"{path.name}: not computed yet; run python -m benchmarks.alloy_dft_table")
    return json.loads(path.read_text(encoding="utf-8"))


def pin_threads() -> None:
    """One thread for OpenMP and the BLAS pools (before numpy or GPAW start theirs)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``'s lock file, so several processes can fill one table."""
    with open(path.with_suffix(".lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    if not path.exists():
        return {"settings": settings, "entries": []}
    table = json.loads(path.read_text(encoding="utf-8"))
    if table.get("settings") != settings:
        raise ValueError(f"settings: {path.name} was made with {table.get('settings')}, not {settings}")
    return table


def compute_table(path: Path = DFT_TABLE_PATH, max_components: int = 3, limit: int | None = None,
                  shard: tuple[int, int] = (0, 1)) -> dict[str, Any]:
    """Compute (or complete) the table; returns it.

    Several processes may fill one table at once, each given its own
    ``shard`` (k, n): the cells whose place in the pool is k modulo n. Each
    entry is added under a file lock to the table as it is on disk then.

    Raises:
        ValueError: if the file holds a table made with other settings.
    """
    from labweave.drivers.atomistic.dft import code_versions, dft_bulk_properties

    code, setups = code_versions()
    settings = {"elements": list(ELEMENTS), "divisions": DIVISIONS, **SETTINGS, "references": REFERENCES,
                "code": code, "setups": setups}
    with _locked(path):
        table = _read(path, settings)
    k, n = shard
    cells = pool(max_components)
    new = 0
    for i, composition in enumerate(cells):
        if i % n != k:
            continue
        key = composition_key(composition)
        if key in {composition_key(e["composition"]) for e in table["entries"]}:
            continue
        if limit is not None and new >= limit:
            break
        start = time.perf_counter()
        result = dft_bulk_properties(parameters(composition), threads=1)
        with _locked(path):
            table = _read(path, settings)
            if key not in {composition_key(e["composition"]) for e in table["entries"]}:
                table["entries"].append({"composition": composition, "dft": result.model_dump(mode="json")})
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
                tmp.replace(path)  # never a half-written table
        new += 1
        logger.info(
            "%d/%d %s: mixing energy %.4f eV/atom, B %.1f GPa (%.0f CPU s, %.0f s)",
            i + 1, len(cells), key, result.formation_energy_per_atom, result.bulk_modulus,
            result.cost_cpu_seconds, time.perf_counter() - start,
        )
    return table


def status(path: Path = DFT_TABLE_PATH) -> dict[str, Any]:
    """How much of the pool the table holds, and what it cost."""
    entries = load_table(path)["entries"] if path.exists() else []
    have = {composition_key(e["composition"]) for e in entries}
    binaries = [composition_key(c) for c in pool(2)]
    everything = [composition_key(c) for c in pool(3)]
    cpu = [e["dft"]["cost_cpu_seconds"] for e in entries]
    return {
        "table": path.name,
        "entries": len(entries),
        "binaries": f"{sum(k in have for k in binaries)}/{len(binaries)}",
        "all": f"{sum(k in have for k in everything)}/{len(everything)}",
        "cpu_seconds_total": round(sum(cpu), 1),
        "cpu_seconds_median": round(sorted(cpu)[len(cpu) // 2], 1) if cpu else None,
    }


def convergence(formula_composition: Mapping[str, float]) -> dict[str, Any]:
    """One cell at the table's settings and at :data:`TIGHT`: how far its properties move."""
    from labweave.drivers.atomistic.dft import dft_bulk_properties

    out: dict[str, Any] = {"composition": dict(formula_composition), "tight": TIGHT}
    rows = {}
    for label, overrides in (("table", {}), ("tight", TIGHT)):
        r = dft_bulk_properties(parameters(formula_composition, **overrides), threads=1)
        rows[label] = r
        out[label] = {
            "mixing_energy_ev_per_atom": r.formation_energy_per_atom,
            "lattice_constant_angstrom": r.lattice_constant,
            "bulk_modulus_gpa": r.bulk_modulus,
            "cpu_seconds": r.cost_cpu_seconds,
            "kpoints": r.dft.kpoints,
        }
    out["delta"] = {
        "mixing_energy_mev_per_atom": 1000 * (rows["tight"].formation_energy_per_atom - rows["table"].formation_energy_per_atom),
        "lattice_constant_percent": 100 * (rows["tight"].lattice_constant / rows["table"].lattice_constant - 1),
        "bulk_modulus_percent": 100 * (rows["tight"].bulk_modulus / rows["table"].bulk_modulus - 1),
    }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.alloy_dft_table", description=__doc__.splitlines()[0])
    parser.add_argument("--max-components", type=int, default=3, choices=(2, 3),
                        help="2: binaries only; 3: binaries, then ternaries (default)")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many new cells")
    parser.add_argument("--shard", default="0/1", metavar="K/N",
                        help="compute only the cells whose place in the pool is K modulo N (several processes)")
    parser.add_argument("--status", action="store_true", help="print how far the table is and stop")
    parser.add_argument("--convergence", metavar="FORMULA", help="check the settings on one 4-atom cell (Cu3Au)")
    parser.add_argument("--out", type=Path, default=DFT_TABLE_PATH, help="the table file")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit: give at least 1")
    try:
        k, n = (int(x) for x in args.shard.split("/"))
        if not 0 <= k < n:
            raise ValueError
    except ValueError:
        parser.error(f"--shard: give K/N with 0 <= K < N, not {args.shard!r}")
    if args.status:
        print(json.dumps(status(args.out)))
        return 0
    pin_threads()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
    if args.convergence:
        from benchmarks.fidelity_costs import composition_of

        try:
            composition = composition_of(args.convergence)
        except ValueError as exc:
            parser.error(f"--convergence: {exc}")
        print(json.dumps(convergence(composition)))
        return 0
    compute_table(args.out, args.max_components, args.limit, (k, n))
    print(json.dumps(status(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What each fidelity costs on the demo's ordered 4-atom cells: EMT, CHGNet and DFT (PBE), measured.

EMT and CHGNet costs are read from the stored table of the demo's cells
(``fcc_alloys_emt_chgnet_ordered.json``: CPU seconds recorded by each
calculation when the table was made); DFT is computed here, with GPAW at the
tenant's default settings, for a few compositions of the same pool
(``--dft-cells``), plus any results of ``labweave relabel --out FILE``
(``--records``, 1-atom cells: they give the scaling with atoms). A cost model
(:class:`labweave.optimizer.costs.CostModel`) is fitted per method and printed,
one JSON line per method, then the ratios that decide what a campaign can
afford::

    python -m benchmarks.fidelity_costs --dft-cells Cu3Au,AgAl3 --records relabel.json \
        --write labweave/optimizer/campaigns/fidelity_costs.json

``--write`` stores the records: the measured costs the DFT materials
campaign (``materials-dft.toml``) fits its fidelities' costs to.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labweave.optimizer.costs import CostModel, CostRecord

DATA_DIR = Path(__file__).resolve().parent / "data"
ORDERED_TABLE = DATA_DIR / "fcc_alloys_emt_chgnet_ordered.json"


def composition_of(formula: str) -> dict[str, float]:
    """``Cu3Au`` -> ``{"Cu": 0.75, "Au": 0.25}``."""
    counts = {s: int(n or 1) for s, n in re.findall(r"([A-Z][a-z]?)(\d*)", formula)}
    total = sum(counts.values())
    if not counts or total != 4:
        raise ValueError(f"{formula!r}: give a 4-atom formula (Cu3Au, CuAu, Cu2AuPt)")
    return {s: n / total for s, n in counts.items()}


def stored_records(path: Path = ORDERED_TABLE) -> list[CostRecord]:
    """EMT and CHGNet costs of the demo's 4-atom cells, as recorded in the stored table."""
    table = json.loads(path.read_text())
    out = []
    for entry in table["entries"]:
        for method in ("emt", "chgnet"):
            record = entry.get(method)
            if record and record.get("cost_cpu_seconds"):
                out.append(CostRecord(method=method, n_atoms=4, cpu_seconds=record["cost_cpu_seconds"]))
    return out


def dft_records(formulas: Sequence[str]) -> list[CostRecord]:
    """DFT (PBE, default settings, fmax 0.1 as the demo) of the ordered 4-atom cell of each formula."""
    from labweave.drivers.atomistic.dft import dft_bulk_properties
    from labweave.schemas.atomistic import DftBulkPropertiesParameters

    out = []
    for formula in formulas:
        params = DftBulkPropertiesParameters.model_validate(
            {"alloy": {"composition": composition_of(formula), "supercell": 1}, "fmax": 0.1, "xc": "PBE"})
        result = dft_bulk_properties(params)
        print(json.dumps({"dft_cell": result.formula, "cpu_seconds": round(result.cost_cpu_seconds, 1),
                          "kpoints": result.dft.kpoints, "irreducible_kpoints": result.dft.irreducible_kpoints,
                          "energies": result.dft.energies, "references": [r.element for r in result.references],
                          "formation_energy_per_atom": round(result.formation_energy_per_atom, 4)}), flush=True)
        out.append(CostRecord.from_result(result.model_dump()))
    return out


def dft_records_of(path: Path) -> list[CostRecord]:
    """The DFT costs of a ``labweave relabel --out`` file or of an earlier ``--write`` file."""
    out = []
    for item in json.loads(path.read_text()):
        if "cpu_seconds" in item:
            out.append(CostRecord.model_validate(item))
        elif item.get("data"):
            out.append(CostRecord.from_result(item["data"]))
    return [r for r in out if r.method == "dft"]


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fidelity_costs", description=__doc__.split("\n")[0])
    parser.add_argument("--dft-cells", default="Cu3Au,AgAl3", help="4-atom formulas computed by DFT here ('' for none)")
    parser.add_argument("--records", type=Path, action="append", default=[],
                        help="DFT costs of a `labweave relabel --out` or a --write file (repeatable)")
    parser.add_argument("--write", type=Path, default=None,
                        help="write the records (the measured costs a campaign's cost_records names) here")
    args = parser.parse_args(argv)
    records = stored_records()
    for path in args.records:
        records += dft_records_of(path)
    records += dft_records([f for f in args.dft_cells.split(",") if f.strip()])
    model = CostModel(records)
    if args.write is not None:
        args.write.write_text(json.dumps([r.model_dump() for r in records], indent=0) + "\n")
    rows = []
    for method, fitted in model.methods.items():
        four = [r.cpu_seconds for r in records if r.method == method and r.n_atoms == 4]
        rows.append({"method": method, "records": fitted.records,
                     "median_cpu_seconds_4_atoms": round(statistics.median(four), 3) if four else None,
                     "atoms_exponent": round(fitted.atoms_exponent, 2),
                     "kpoints_exponent": round(fitted.kpoints_exponent, 2),
                     "log_residual": round(fitted.log_residual, 2)})
    for row in rows:
        print(json.dumps(row))
    medians = {r["method"]: r["median_cpu_seconds_4_atoms"] for r in rows if r["median_cpu_seconds_4_atoms"]}
    for cheap in ("emt", "chgnet"):
        if "dft" in medians and cheap in medians:
            print(json.dumps({"ratio": f"dft/{cheap}", "on": "4-atom cells",
                              "value": round(medians["dft"] / medians[cheap], 1)}))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

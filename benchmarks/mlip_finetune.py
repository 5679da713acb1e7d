"""Benchmark: CHGNet's error against DFT before and after fine-tuning on N DFT results (``python -m benchmarks.mlip_finetune``).

The cells are the ordered 4-atom fcc alloys of the DFT (PBE) table
(``benchmarks/data/fcc_alloys_dft_pbe_ordered4.json``, made by
``python -m benchmarks.alloy_dft_table``). A fixed set of ``--held-out`` cells
(drawn once with seed 0) is never trained on; for each N of ``--sizes`` and each
seed of ``--seeds``, N training cells are drawn at random from the rest, a
committee is fine-tuned on their DFT results through the MLIP driver's own
:func:`~labweave.drivers.atomistic.mlip_training.fine_tune`, and every
held-out cell is computed by the committee with the lab's bulk-properties
procedure (relaxation to 0.1 eV/A, Birch-Murnaghan fit, elemental references by
the same committee), as the CHGNet tenant computes a request naming the model.

Printed, one JSON line per N and seed, then one per N averaged over the seeds:
the mean absolute error against DFT of the mixing energy (meV/atom) and of the
bulk modulus (GPa) on the held-out cells, before (the pretrained CHGNet, read
from ``fcc_alloys_emt_chgnet_ordered.json``, computed by the same procedure
and settings) and after; the committee's calibration (the fractions of
held-out errors within one and two of its standard deviations as the results
report them, scaled by the factors fitted on its out-of-bag examples, and
within one and two of the members' raw spreads, and for comparison within
twice the gap to the pretrained model's value); and the CPU seconds of the
fine-tuning and of the held-out predictions. Everything runs on one thread
(OpenMP, BLAS and torch pinned).

The DFT table grows while another process computes it; ``--dft-table`` reads it
wherever it is, and sizes that leave no held-out cells are reported as skipped.

Usage, from the root of a clone::

    python -m benchmarks.mlip_finetune                                  # N = 5, 10, 20, two seeds
    python -m benchmarks.mlip_finetune --sizes 5 --seeds 1 --held-out 6  # a quick look
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.alloy_dft_table import DATA_DIR, DFT_TABLE_PATH, SETTINGS, composition_key, load_table, pin_threads

logger = logging.getLogger(__name__)

#: The pretrained CHGNet's values of the same ordered cells (same relaxation settings).
CHGNET_TABLE_PATH = DATA_DIR / "fcc_alloys_emt_chgnet_ordered.json"


def example(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A fine-tuning example (the wire form) from one entry of the DFT table."""
    dft = entry["dft"]
    return {
        "result_id": dft["formula"],
        "alloy": {"composition": dict(entry["composition"]), "prototype": SETTINGS["prototype"],
                  "supercell": SETTINGS["supercell"], "seed": SETTINGS["seed"]},
        **{k: dft[k] for k in ("energy_per_atom", "volume_per_atom", "bulk_modulus", "bulk_modulus_derivative",
                               "references")},
    }


def cell_parameters(entry: Mapping[str, Any], model: str) -> Any:
    """The CHGNet request of one held-out cell by the fine-tuned model (the CHGNet table's settings)."""
    from labweave.schemas.atomistic import ChgnetBulkPropertiesParameters

    return ChgnetBulkPropertiesParameters.model_validate({
        "alloy": {"composition": dict(entry["composition"]), "prototype": SETTINGS["prototype"],
                  "supercell": SETTINGS["supercell"], "seed": SETTINGS["seed"]},
        "fmax": SETTINGS["fmax"], "model": model,
    })


def errors(predicted: Sequence[Mapping[str, Any]], truth: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """MAE of the mixing energy (meV/atom) and the bulk modulus (GPa)."""
    ef = [abs(p["formation_energy_per_atom"] - t["formation_energy_per_atom"]) for p, t in zip(predicted, truth)]
    b = [abs(p["bulk_modulus"] - t["bulk_modulus"]) for p, t in zip(predicted, truth)]
    return {"mixing_energy_mae_mev": 1000.0 * float(np.mean(ef)), "bulk_modulus_mae_gpa": float(np.mean(b))}


#: (name in the figures, value, its standard deviation, the factor that scaled the members' spread, unit factor)
QUANTITIES = (("mixing_energy", "formation_energy_per_atom", "formation_energy_per_atom_std", "energy_std_scale",
               1000.0),
              ("bulk_modulus", "bulk_modulus", "bulk_modulus_std", "bulk_modulus_std_scale", 1.0))


def calibration(predicted: Sequence[Mapping[str, Any]], truth: Sequence[Mapping[str, Any]],
                pretrained: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """How well the uncertainties cover the held-out errors.

    For the mixing energy and the bulk modulus: the fractions of errors within one
    and two standard deviations as reported (a Gaussian's 68 % and 95 %), the same
    for the members' raw spread (the reported deviation divided by its factor), and
    the mean reported deviation (meV/atom, GPa); for comparison, the fraction of
    mixing-energy errors within twice the gap between the fine-tuned and the
    pretrained model's value (the other uncertainty the lab could use).
    """
    out: dict[str, float] = {}
    for name, key, std, scale, unit in QUANTITIES:
        error = np.array([abs(p[key] - t[key]) for p, t in zip(predicted, truth)])
        sigma = np.array([p[std] for p in predicted])
        raw = sigma / np.array([p.get(scale) or 1.0 for p in predicted])
        for k in (1, 2):
            out[f"{name}_within_{k}sigma"] = float(np.mean(error <= k * sigma))
            out[f"{name}_within_{k}raw_spread"] = float(np.mean(error <= k * raw))
        out[f"{name}_sigma_mean"] = float(unit * sigma.mean())
    gap = [abs(p["formation_energy_per_atom"] - t["formation_energy_per_atom"])
           <= 2 * abs(p["formation_energy_per_atom"] - q["formation_energy_per_atom"])
           for p, t, q in zip(predicted, truth, pretrained)]
    out["mixing_energy_within_2gap_to_pretrained"] = float(np.mean(gap))
    return out


def run(dft_table: Path, chgnet_table: Path, sizes: Sequence[int], seeds: Sequence[int], held_out: int,
        epochs: int, committee: int, learning_rate: float, freeze: bool, eos_points: int,
        stress_weight: float = 1e-3, out: Any = sys.stdout) -> list[dict[str, Any]]:
    """Fine-tune for every size and seed, predict the held-out cells, print and return the JSON lines."""
    from labweave.drivers.atomistic.mlip import ChgnetBackend
    from labweave.drivers.atomistic.mlip_training import fine_tune
    from labweave.schemas.atomistic import MlipFineTuningParameters

    entries = list(load_table(dft_table)["entries"])
    pretrained = {composition_key(e["composition"]): e["chgnet"] for e in load_table(chgnet_table)["entries"]}
    entries = [e for e in entries if composition_key(e["composition"]) in pretrained]
    order = np.random.default_rng(0).permutation(len(entries))
    test = [entries[i] for i in order[:held_out]]
    pool = [entries[i] for i in order[held_out:]]
    truth = [e["dft"] for e in test]
    before = [pretrained[composition_key(e["composition"])] for e in test]
    lines: list[dict[str, Any]] = []

    def emit(line: dict[str, Any]) -> None:
        lines.append(line)
        print(json.dumps(line), file=out, flush=True)

    base = {"table_cells": len(entries), "held_out": len(test), "epochs": epochs, "committee": committee,
            "learning_rate": learning_rate, "freeze_lower_layers": freeze, "eos_points": eos_points,
            "stress_weight": stress_weight}
    with tempfile.TemporaryDirectory(prefix="mlip-models-") as folder:
        backend = ChgnetBackend(model_dir=Path(folder))
        for n in sizes:
            if len(test) < 2 or n > len(pool):
                emit({**base, "n": n, "skipped": f"the table has {len(entries)} cells: too few for {n} + held-out"})
                continue
            per_seed = []
            for seed in seeds:
                picks = np.random.default_rng(1000 + seed).choice(len(pool), size=n, replace=False)
                params = MlipFineTuningParameters.model_validate({
                    "examples": [example(pool[i]) for i in picks], "epochs": epochs, "committee": committee,
                    "learning_rate": learning_rate, "freeze_lower_layers": freeze, "eos_points": eos_points,
                    "stress_weight": stress_weight, "seed": seed})
                cpu = time.process_time()
                tuned = fine_tune(params, backend.registry)
                training_cpu = time.process_time() - cpu
                cpu = time.process_time()
                after = [backend.compute(cell_parameters(e, tuned.model)).model_dump() for e in test]
                predict_cpu = time.process_time() - cpu
                line = {**base, "n": n, "seed": seed, "model": tuned.model,
                        "before": errors(before, truth), "after": errors(after, truth),
                        "calibration": calibration(after, truth, before),
                        "training_mae_mev": {"before": 1000 * tuned.mae_before, "after": 1000 * tuned.mae_after},
                        "std_scale": {"energy": tuned.energy_std_scale, "bulk_modulus": tuned.bulk_modulus_std_scale,
                                      "examples": tuned.calibration_examples},
                        "fine_tuning_cpu_seconds": round(training_cpu, 1),
                        "held_out_cpu_seconds": round(predict_cpu, 1)}
                emit(line)
                per_seed.append(line)
            emit({**base, "n": n, "seeds": len(per_seed), "summary": True,
                  **{when: {k: statistics.fmean(line[when][k] for line in per_seed) for k in per_seed[0][when]}
                     for when in ("before", "after", "calibration")},
                  "fine_tuning_cpu_seconds": statistics.fmean(line["fine_tuning_cpu_seconds"] for line in per_seed)})
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mlip_finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--dft-table", type=Path, default=DFT_TABLE_PATH, help="the DFT table (it may be growing)")
    parser.add_argument("--chgnet-table", type=Path, default=CHGNET_TABLE_PATH,
                        help="the pretrained CHGNet's values of the same cells")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20], help="numbers of DFT results trained on")
    parser.add_argument("--seeds", type=int, default=2, help="random training picks (and committees) per size")
    parser.add_argument("--held-out", type=int, default=10, help="cells never trained on, the same for every size")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--committee", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--eos-points", type=int, default=4)
    parser.add_argument("--stress-weight", type=float, default=1e-3,
                        help="weight of the EOS pressures in the training loss (0: energies only, the old training)")
    parser.add_argument("--train-all-layers", action="store_true", help="do not freeze the lower layers")
    args = parser.parse_args(argv)
    pin_threads()
    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    try:
        run(args.dft_table, args.chgnet_table, args.sizes, range(args.seeds), args.held_out, args.epochs,
            args.committee, args.learning_rate, not args.train_all_layers, args.eos_points, args.stress_weight)
    except FileNotFoundError as exc:
        print(f"mlip_finetune: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

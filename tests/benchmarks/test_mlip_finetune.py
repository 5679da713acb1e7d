"""The fine-tuning benchmark: its examples are the driver's, its figures are what they say."""

from __future__ import annotations

import io
import json

import pytest

from benchmarks.mlip_finetune import CHGNET_TABLE_PATH, calibration, errors, example, run
from labweave.schemas.atomistic import MlipTrainingExample
from tests.drivers.mlip_examples import AG_AL, AG_AL3, FORMATION


def entry(given: dict) -> dict:
    """An entry of the DFT table as benchmarks.alloy_dft_table stores it."""
    formula = given["result_id"].removeprefix("dft-")
    return {"composition": given["alloy"]["composition"],
            "dft": {**{k: given[k] for k in ("energy_per_atom", "volume_per_atom", "bulk_modulus",
                                               "bulk_modulus_derivative", "references")},
                    "formula": formula, "formation_energy_per_atom": FORMATION[given["result_id"]]}}


def test_a_table_entry_is_a_valid_fine_tuning_example():
    made = MlipTrainingExample.model_validate(example(entry(AG_AL3)))
    assert made.alloy is not None and made.alloy.supercell == 1 and made.result_id == "AgAl3"
    assert made.bulk_modulus == AG_AL3["bulk_modulus"]


def test_errors_and_calibration():
    truth = [{"formation_energy_per_atom": 0.10, "bulk_modulus": 100.0},
             {"formation_energy_per_atom": -0.02, "bulk_modulus": 80.0}]
    predicted = [{"formation_energy_per_atom": 0.13, "bulk_modulus": 110.0, "formation_energy_per_atom_std": 0.02,
                  "bulk_modulus_std": 2.0, "energy_std_scale": 2.0, "bulk_modulus_std_scale": 2.0},
                 {"formation_energy_per_atom": -0.03, "bulk_modulus": 79.0, "formation_energy_per_atom_std": 0.001,
                  "bulk_modulus_std": 1.0, "energy_std_scale": None, "bulk_modulus_std_scale": None}]
    assert errors(predicted, truth) == pytest.approx({"mixing_energy_mae_mev": 20.0, "bulk_modulus_mae_gpa": 5.5})
    pretrained = [{"formation_energy_per_atom": 0.0}, {"formation_energy_per_atom": -0.0305}]
    # the raw spread is the reported deviation over its factor: 0.01 eV/atom and 1 GPa for the first cell
    assert calibration(predicted, truth, pretrained) == pytest.approx({
        "mixing_energy_within_1sigma": 0.0, "mixing_energy_within_2sigma": 0.5,
        "mixing_energy_within_1raw_spread": 0.0, "mixing_energy_within_2raw_spread": 0.0,
        "mixing_energy_sigma_mean": 10.5,
        "bulk_modulus_within_1sigma": 0.5, "bulk_modulus_within_2sigma": 0.5,
        "bulk_modulus_within_1raw_spread": 0.5, "bulk_modulus_within_2raw_spread": 0.5,
        "bulk_modulus_sigma_mean": 1.5,
        "mixing_energy_within_2gap_to_pretrained": 0.5})


def test_a_table_too_small_for_a_size_is_reported_not_faked(tmp_path):
    table = tmp_path / "dft.json"
    table.write_text(json.dumps({"settings": {}, "entries": [entry(AG_AL3), entry(AG_AL)]}))
    out = io.StringIO()
    lines = run(table, CHGNET_TABLE_PATH, [5], [0],
                held_out=1, epochs=1, committee=2, learning_rate=1e-3, freeze=True, eos_points=2, stress_weight=1e-3,
                out=out)
    assert lines == [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["n"] == 5 and "too few" in lines[0]["skipped"] and lines[0]["table_cells"] == 2

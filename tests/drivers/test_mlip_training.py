"""Fine-tuning CHGNet on DFT results: the shifted targets, real training by CHGNet's trainer, the registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from ase.stress import voigt_6_to_full_3x3_stress
from ase.units import GPa

from labweave.drivers.atomistic.chgnet_models import (
    ModelRegistry,
    UnknownModel,
    chgnet_calculator,
    chgnet_model,
    member_fits,
    predict_energies,
)
from labweave.drivers.atomistic.eos import birch_murnaghan_energy, birch_murnaghan_pressure
from labweave.drivers.atomistic.mlip_training import (
    dft_references,
    element_shifts,
    eos_strains,
    example_crystal,
    fine_tune,
    pretrained_reference,
    spread_scale,
    stress_targets,
    training_cells,
)
from labweave.drivers.base import ParameterError
from labweave.schemas.atomistic import MlipFineTuningParameters, MlipTrainingExample
from tests.drivers.mlip_examples import AG_AL, AG_AL3, FORMATION


def examples() -> list[MlipTrainingExample]:
    return [MlipTrainingExample.model_validate(e) for e in (AG_AL3, AG_AL)]


def test_eos_strains_come_in_pairs_within_the_dft_scan():
    assert eos_strains(0) == []
    assert eos_strains(4) == pytest.approx([-0.015, 0.015, -0.03, 0.03])


def test_the_eos_pressure_is_minus_the_slope_of_its_energy():
    v0, b0, b0_prime = 16.95, 67.3, 8.9
    assert birch_murnaghan_pressure(v0, v0, b0, b0_prime) == 0.0
    for volume in (15.5, 16.5, 17.5):
        h = 1e-5
        slope = (birch_murnaghan_energy(volume + h, 0.0, v0, b0, b0_prime)
                 - birch_murnaghan_energy(volume - h, 0.0, v0, b0, b0_prime)) / (2 * h)
        assert birch_murnaghan_pressure(volume, v0, b0, b0_prime) == pytest.approx(-slope / GPa, rel=1e-6)
    assert birch_murnaghan_pressure(15.5, v0, b0, b0_prime) > 0 > birch_murnaghan_pressure(17.5, v0, b0, b0_prime)


def test_training_cells_carry_the_eos_pressure_and_the_stress_targets_keep_the_pretrained_shear():
    given = examples()
    cells = training_cells(given, eos_points=2)
    for cell in cells:
        if cell.example is None or "@" not in cell.label:
            assert cell.pressure == 0.0  # V0 and the elements' DFT volumes: at equilibrium
            continue
        example = given[cell.example]
        volume = cell.atoms.get_volume() / len(cell.atoms)
        assert cell.pressure == pytest.approx(birch_murnaghan_pressure(
            volume, example.volume_per_atom, example.bulk_modulus, example.bulk_modulus_derivative))
        assert (cell.pressure > 0) == (volume < example.volume_per_atom)
    targets = [np.array(t) for t in stress_targets(chgnet_model(), cells)]
    calculator = chgnet_calculator(chgnet_model())
    for cell, target in zip(cells, targets):
        ase_stress = -0.1 * target  # as CHGNet's StructureData reads it: GPa, ASE's sign
        assert np.trace(ase_stress) / 3 == pytest.approx(-cell.pressure, abs=1e-5)  # float32 shear
        calculator.calculate(cell.atoms, ["stress"])
        own = np.asarray(calculator.results["stress"]).reshape(-1)
        own = (voigt_6_to_full_3x3_stress(own) if own.size == 6 else own.reshape(3, 3)) / GPa
        own_shear = own - np.trace(own) / 3 * np.eye(3)
        assert ase_stress - np.trace(ase_stress) / 3 * np.eye(3) == pytest.approx(own_shear, abs=1e-6)


def test_the_spread_factor_makes_out_of_bag_errors_unit_variance():
    assert spread_scale([0.03, 0.04], [0.01, 0.01]) == pytest.approx(np.sqrt((9 + 16) / 2))
    assert spread_scale([0.001], [0.01]) == 1.0  # never narrower than the spread itself
    assert spread_scale([0.01], [0.0]) is None and spread_scale([], []) is None


def test_shifted_targets_keep_the_dft_mixing_energies():
    given = examples()
    references = dft_references(given)
    shifts = element_shifts(references)
    for symbol, reference in references.items():  # the shift is the difference of the two methods' elements
        assert shifts[symbol] == pytest.approx(pretrained_reference(symbol).energy_per_atom - reference.energy_per_atom)
    cells = training_cells(given, eos_points=2)
    assert len(cells) == 2 * 3 + 2  # each crystal at V0 and two more volumes, and the two elements
    elements = {c.label.split()[0]: c.energy_per_atom for c in cells if c.example is None}
    assert elements == pytest.approx({s: pretrained_reference(s).energy_per_atom for s in ("Ag", "Al")})
    for example in given:
        at_v0 = next(c for c in cells if c.label == example.result_id)
        assert at_v0.atoms.get_volume() / len(at_v0.atoms) == pytest.approx(example.volume_per_atom)
        symbols = at_v0.atoms.get_chemical_symbols()
        mixing = at_v0.energy_per_atom - np.mean([elements[s] for s in symbols])
        assert mixing == pytest.approx(FORMATION[example.result_id], abs=1e-9)
        strained = [c for c in cells if c.example == at_v0.example and c is not at_v0]
        for cell in strained:  # energies off the DFT fit: above E0, by the bulk modulus
            volume = cell.atoms.get_volume() / len(cell.atoms)
            expected = birch_murnaghan_energy(volume, example.energy_per_atom, example.volume_per_atom,
                                              example.bulk_modulus, example.bulk_modulus_derivative)
            assert cell.energy_per_atom - at_v0.energy_per_atom == pytest.approx(expected - example.energy_per_atom)
            assert cell.energy_per_atom > at_v0.energy_per_atom


def test_fine_tuning_moves_the_model_to_the_dft_energies_and_the_registry_keeps_it(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    params = MlipFineTuningParameters(examples=examples(), epochs=4, committee=2, eos_points=2,
                                      learning_rate=5e-3, seed=7)
    result = fine_tune(params, registry)
    assert result.mae_after < 0.7 * result.mae_before
    assert result.calibration_examples >= 1  # one example is out of bag of a member at these seeds
    assert result.energy_std_scale is not None and result.energy_std_scale >= 1.0
    assert result.bulk_modulus_std_scale is not None and result.bulk_modulus_std_scale >= 1.0
    assert [m.seed for m in result.members] == [7, 8]
    assert registry.versions() == [result.model]

    committee = registry.load(result.model)
    assert registry.load(result.model) is committee  # read once per process
    assert len(committee.members) == 2
    record = json.loads((tmp_path / "models" / result.model / "model.json").read_text())
    assert record["base_model"] == "CHGNet 0.3.0"
    assert [e["result_id"] for e in record["examples"]] == ["dft-AgAl3", "dft-AgAl"]
    assert record["settings"]["epochs"] == 4 and record["cost_cpu_seconds"] > 0
    # the stored weights predict what the trained ones did
    cells = training_cells(params.examples, params.eos_points)
    predicted = predict_energies(committee.members, [c.atoms for c in cells]).mean(axis=0)
    targets = np.array([c.energy_per_atom for c in cells])
    assert float(np.mean(np.abs(predicted - targets))) == pytest.approx(result.mae_after, abs=1e-6)
    # the members differ (seeds and bootstrap), so the committee has a spread
    spread = predict_energies(committee.members, [cells[0].atoms]).std(axis=0)
    assert float(spread[0]) > 1e-5
    assert record["energy_std_scale"] == result.energy_std_scale
    assert record["bulk_modulus_std_scale"] == result.bulk_modulus_std_scale


def test_the_eos_pressures_teach_the_bulk_modulus_that_energies_alone_did_not(tmp_path):
    """Trained on energies only, the committee's B0 of its own training cells stayed as far from DFT as
    the pretrained model's (or went farther); the pressures of the fitted EOS bring it close."""
    given = examples()
    pretrained = {e.result_id: member_fits([chgnet_model()], example_crystal(e))[0].bulk_modulus for e in given}
    errors = {}
    default = MlipFineTuningParameters(examples=given).stress_weight
    for weight in (0.0, default):
        params = MlipFineTuningParameters(examples=given, epochs=6, committee=1, eos_points=4,
                                          learning_rate=3e-3, stress_weight=weight, seed=3)
        registry = ModelRegistry(tmp_path / f"weight-{weight}")
        members = registry.load(fine_tune(params, registry).model).members
        errors[weight] = np.mean([abs(member_fits(members, example_crystal(e))[0].bulk_modulus - e.bulk_modulus)
                                  for e in given])
    before = np.mean([abs(pretrained[e.result_id] - e.bulk_modulus) for e in given])
    print(f"B0 MAE on the training cells: pretrained {before:.1f}, energies only {errors[0.0]:.1f}, "
          f"with pressures {errors[default]:.1f} GPa")
    assert errors[default] < 0.5 * before
    assert errors[default] < 0.5 * errors[0.0]


def test_unknown_versions_are_refused(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(UnknownModel, match="no fine-tuned model 0123456789ab"):
        registry.load("0123456789ab")
    with pytest.raises(UnknownModel, match="not a model version"):
        registry.load("../../etc")


def test_examples_of_other_dft_settings_are_refused():
    other = json.loads(json.dumps(AG_AL))
    other["references"][0]["energy_per_atom"] += 0.05  # silver in another cell: its k-point error, accepted
    dft_references([MlipTrainingExample.model_validate(e) for e in (AG_AL3, other)])
    other["references"][0]["energy_per_atom"] += 0.5  # another functional's silver
    with pytest.raises(ParameterError) as caught:
        dft_references([MlipTrainingExample.model_validate(e) for e in (AG_AL3, other)])
    assert caught.value.field == "examples.1.references"


@pytest.mark.parametrize("change, field", [
    ({"examples": []}, "examples"),
    ({"committee": 9}, "committee"),
    ({"epochs": 0}, "epochs"),
    ({"eos_points": 3}, "eos_points"),
    ({"stress_weight": -0.1}, "stress_weight"),
])
def test_bad_fine_tuning_parameters_are_refused(change, field):
    with pytest.raises(ValidationError) as caught:
        MlipFineTuningParameters.model_validate({"examples": [AG_AL3], **change})
    assert caught.value.errors()[0]["loc"][0] == field


def test_examples_must_be_small_cells_with_one_crystal():
    big = {**AG_AL3, "alloy": {**AG_AL3["alloy"], "supercell": 2}}
    with pytest.raises(ValidationError, match="supercell"):
        MlipTrainingExample.model_validate(big)
    with pytest.raises(ValidationError, match="exactly one"):
        MlipTrainingExample.model_validate({k: v for k, v in AG_AL3.items() if k != "alloy"})


def test_each_example_is_shifted_by_its_own_references():
    other = json.loads(json.dumps(AG_AL))
    other["references"][1]["energy_per_atom"] += 0.08  # Al in this alloy's own cell and mesh: its k-point error
    given = [MlipTrainingExample.model_validate(e) for e in (AG_AL3, other)]
    cells = training_cells(given, eos_points=0)
    elements = {s: pretrained_reference(s).energy_per_atom for s in ("Ag", "Al")}
    for example, cell in zip(given, cells[:2]):
        own = {r.element: r.energy_per_atom for r in example.references}
        symbols = cell.atoms.get_chemical_symbols()
        dft_mixing = example.energy_per_atom - np.mean([own[s] for s in symbols])
        assert cell.energy_per_atom - np.mean([elements[s] for s in symbols]) == pytest.approx(dft_mixing, abs=1e-9)

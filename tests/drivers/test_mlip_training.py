"""Fine-tuning CHGNet on DFT results: the shifted targets, real training by CHGNet's trainer, the registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from labweave.drivers.atomistic.chgnet_models import ModelRegistry, UnknownModel, predict_energies
from labweave.drivers.atomistic.eos import birch_murnaghan_energy
from labweave.drivers.atomistic.mlip_training import (
    dft_references,
    element_shifts,
    eos_strains,
    fine_tune,
    pretrained_reference,
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

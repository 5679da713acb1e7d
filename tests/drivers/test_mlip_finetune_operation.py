"""The CHGNet simulator's fine-tuning operation, and bulk properties by the fine-tuned committee it names."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from labweave.drivers import registry
from labweave.drivers.atomistic.chgnet_models import member_fits
from labweave.drivers.atomistic.frontend import FINE_TUNING, QUANTITY, ChgnetSimulator
from labweave.drivers.atomistic.mlip import ChgnetBackend
from labweave.drivers.base import BackendContext, ParameterError
from labweave.drivers.atomistic.structures import build_crystal
from labweave.schemas.atomistic import BulkPropertiesParameters, ChgnetBulkPropertiesResult, MlipFineTuningResult
from tests.drivers.mlip_examples import AG_AL, AG_AL3

AG_AL_CELL = {"alloy": {"composition": {"Ag": 0.5, "Al": 0.5}, "supercell": 1}}


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    return ChgnetSimulator(ChgnetBackend(model_dir=tmp_path_factory.mktemp("lab") / "models"))


@pytest.fixture(scope="module")
def fine_tuned(simulator) -> dict:
    parameters = {"examples": [AG_AL3, AG_AL], "epochs": 3, "committee": 2, "eos_points": 2, "learning_rate": 5e-3}
    return asyncio.run(simulator.perform(FINE_TUNING, "chgnet", parameters))


def test_fine_tuning_returns_the_stored_version_and_its_errors(simulator, fine_tuned):
    result = MlipFineTuningResult.model_validate(fine_tuned)
    assert simulator.backend.registry.versions() == [result.model]
    assert result.committee == 2 and len(result.members) == 2 and result.examples == 2
    assert result.mae_after < result.mae_before
    assert set(result.element_shifts) == {"Ag", "Al"}
    assert result.cost_cpu_seconds > 0
    assert result.energy_std_scale is None or result.energy_std_scale >= 1.0


def test_bulk_properties_by_the_fine_tuned_committee_name_it_and_carry_its_spread(simulator, fine_tuned):
    pretrained = asyncio.run(simulator.perform(QUANTITY, "chgnet", AG_AL_CELL))
    tuned = asyncio.run(simulator.perform(QUANTITY, "chgnet", {**AG_AL_CELL, "model": fine_tuned["model"]}))
    ChgnetBulkPropertiesResult.model_validate(tuned)
    assert pretrained["model"] is None and pretrained["committee"] == 1
    assert pretrained["formation_energy_per_atom_std"] is None
    assert tuned["model"] == fine_tuned["model"] and tuned["committee"] == 2
    assert tuned["base_model"] == "CHGNet 0.3.0"
    assert tuned["energy_per_atom"] != pytest.approx(pretrained["energy_per_atom"], abs=1e-4)
    for key in ("energy_per_atom_std", "formation_energy_per_atom_std", "bulk_modulus_std"):
        assert tuned[key] > 0
    # the deviations are the members' spread at the relaxed crystal times the factors fitted at training
    record = simulator.backend.registry.record(fine_tuned["model"])
    assert tuned["energy_std_scale"] == record["energy_std_scale"]
    assert tuned["bulk_modulus_std_scale"] == record["bulk_modulus_std_scale"]
    crystal = build_crystal(BulkPropertiesParameters.model_validate(AG_AL_CELL))
    crystal.set_cell(crystal.get_cell() * (tuned["volume_per_atom"] * len(crystal) / crystal.get_volume()) ** (1 / 3),
                     scale_atoms=True)
    fits = member_fits(simulator.backend.committee(fine_tuned["model"]).members, crystal)
    assert tuned["bulk_modulus_std"] == pytest.approx(
        (tuned["bulk_modulus_std_scale"] or 1.0) * np.std([f.bulk_modulus for f in fits], ddof=1), rel=1e-3)
    assert tuned["energy_per_atom_std"] == pytest.approx(
        (tuned["energy_std_scale"] or 1.0) * np.std([f.energy for f in fits], ddof=1), rel=1e-3)
    # the committee learned the DFT mixing energy of this cell (-0.023 eV/atom) better than the pretrained model
    dft = -0.02275013387818481
    assert abs(tuned["formation_energy_per_atom"] - dft) < abs(pretrained["formation_energy_per_atom"] - dft)


def test_an_unknown_model_is_refused_naming_model(simulator):
    with pytest.raises(ParameterError) as caught:
        simulator.admit(QUANTITY, "chgnet", {**AG_AL_CELL, "model": "0123456789ab"})
    assert caught.value.field == "model" and "no fine-tuned model 0123456789ab" in caught.value.message
    with pytest.raises(ParameterError) as caught:
        simulator.admit(QUANTITY, "chgnet", {**AG_AL_CELL, "model": "latest"})
    assert caught.value.field == "model"


@pytest.mark.parametrize("change, field", [
    ({"examples": [{**AG_AL3, "alloy": {"composition": {"Og": 1.0}, "supercell": 1}}]}, "examples.0.alloy.composition"),
    ({"examples": [{**AG_AL3, "alloy": {"composition": {"Ag": 0.5, "Al": 0.5}, "supercell": 2}}]},
     "examples.0.alloy.supercell"),
    ({"committee": 6}, "committee"),
    ({"epochs": 51}, "epochs"),
    ({"examples": [{k: v for k, v in AG_AL3.items() if k != "bulk_modulus"}]}, "examples.0.bulk_modulus"),
])
def test_bad_fine_tuning_requests_are_refused_naming_the_field(simulator, change, field):
    with pytest.raises(ParameterError) as caught:
        simulator.admit(FINE_TUNING, "chgnet", {"examples": [AG_AL3], **change})
    assert caught.value.field == field


def test_the_capabilities_publish_both_operations_and_the_model_folder_is_an_option(tmp_path):
    simulator = ChgnetSimulator()
    published = {(c["quantity"], c["method"]) for c in simulator.capabilities()}
    assert published == {(QUANTITY, "chgnet"), (FINE_TUNING, "chgnet")}
    limits = {(e["quantity"], e["method"]): e["limitations"] for e in simulator.limitations()}
    assert (FINE_TUNING, "chgnet") in limits
    backend = registry.create("chgnet", options={"model_dir": str(tmp_path / "elsewhere")},
                              context=BackendContext(state_dir=tmp_path / "lab"))
    assert isinstance(backend, ChgnetBackend) and backend.model_dir == tmp_path / "elsewhere"
    default = registry.create("chgnet", context=BackendContext(state_dir=tmp_path / "lab"))
    assert isinstance(default, ChgnetBackend) and default.model_dir == tmp_path / "lab" / "mlip-models"

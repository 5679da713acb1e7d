"""The optimizer's side of the learning MLIP: examples from DFT records, when to fine-tune, the model's noise."""

from __future__ import annotations

import ast

import pytest
from pydantic import ValidationError

from labweave.optimizer.mlip_learning import FineTuningPlan, observation_noise, training_example, with_model
from labweave.schemas.atomistic import MlipFineTuningParameters
from tests.conftest import REPO
from tests.drivers.mlip_examples import AG_AL3


def dft_record() -> tuple[dict, dict]:
    """A DFT request's parameters and its result's data, as the server stores them."""
    parameters = {"alloy": AG_AL3["alloy"], "xc": "PBE", "cutoff": 300.0, "kpoint_density": 2.0, "fmax": 0.1}
    result = {k: AG_AL3[k] for k in ("energy_per_atom", "volume_per_atom", "bulk_modulus", "bulk_modulus_derivative",
                                     "references")}
    result |= {"method": "dft", "formula": "AgAl3", "formation_energy_per_atom": 0.1477, "cost_cpu_seconds": 52.7}
    return parameters, result


def test_a_dft_record_becomes_a_training_example():
    parameters, result = dft_record()
    example = training_example(parameters, result, request_id="r-1", result_id="s-1")
    assert example["alloy"]["composition"] == {"Ag": 0.25, "Al": 0.75}
    assert example["request_id"] == "r-1" and example["bulk_modulus"] == AG_AL3["bulk_modulus"]
    assert "xc" not in example and "formation_energy_per_atom" not in example
    with pytest.raises(ValidationError):  # a 32-atom cell is no small DFT cell
        training_example({"alloy": {**AG_AL3["alloy"], "supercell": 2}}, result)


def test_the_plan_fine_tunes_after_every_k_new_results():
    plan = FineTuningPlan(every=3, epochs=4, committee=2)
    assert [plan.due(n, trained_on=0) for n in range(5)] == [False, False, False, True, True]
    assert not plan.due(5, trained_on=3) and plan.due(6, trained_on=3)
    parameters, result = dft_record()
    request = plan.request([training_example(parameters, result)] * 3)
    parsed = MlipFineTuningParameters.model_validate(request)
    assert parsed.epochs == 4 and parsed.committee == 2 and len(parsed.examples) == 3


def test_chgnet_parameters_name_the_model_and_its_committee_is_the_noise():
    assert with_model({"alloy": {"composition": {"Cu": 1.0}}, "model": "aaaaaaaaaaaa"}, "0123456789ab")["model"] \
        == "0123456789ab"
    assert "model" not in with_model({"alloy": {}, "model": "aaaaaaaaaaaa"}, None)
    assert observation_noise({"formation_energy_per_atom_std": 0.02}) == pytest.approx(4e-4)
    assert observation_noise({"formation_energy_per_atom_std": None}) is None
    assert observation_noise({"bulk_modulus_std": 3.0}, "bulk_modulus") == pytest.approx(9.0)


def test_the_optimizer_side_imports_no_driver():
    tree = ast.parse((REPO / "optimizer" / "mlip_learning.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m and "drivers" in m for m in modules)

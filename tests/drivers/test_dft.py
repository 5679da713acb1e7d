"""The DFT simulator: real GPAW on tiny cells (coarse settings, a few seconds each)."""

from __future__ import annotations

import asyncio
import pickle

import numpy as np
import pytest
from ase.build import bulk

from labweave.drivers.atomistic.dft import dft_bulk_properties, setup_elements
from labweave.drivers.atomistic.frontend import DftSimulator
from labweave.drivers.base import InstrumentFault, ParameterError
from labweave.schemas.atomistic import DftBulkPropertiesParameters, DftBulkPropertiesResult

QUANTITY = "bulk_properties"
#: Coarse settings: a 1-atom fcc cell gets a 4x4x4 mesh at 200 eV.
COARSE = {"cutoff": 200.0, "kpoint_density": 1.0, "smearing": 0.2}


def crystal(atoms) -> dict:
    return {"structure": {"cell": atoms.cell.tolist(), "positions": atoms.positions.tolist(),
                          "symbols": atoms.get_chemical_symbols()}}


def run(sim: DftSimulator, params: dict) -> dict:
    return asyncio.run(sim.perform(QUANTITY, "dft", params))


@pytest.fixture(scope="module")
def dft() -> DftSimulator:
    return DftSimulator()


@pytest.fixture(scope="module")
def aluminium(dft) -> dict[str, dict]:
    """Al (one atom, from 4.05 A) with LDA and with PBE."""
    return {xc: run(dft, {**crystal(bulk("Al", "fcc", a=4.05)), **COARSE, "xc": xc}) for xc in ("LDA", "PBE")}


def test_lda_binds_tighter_than_pbe(aluminium):
    lda, pbe = aluminium["LDA"], aluminium["PBE"]
    for result in (lda, pbe):
        DftBulkPropertiesResult.model_validate(result)
        assert result["method"] == "dft" and result["n_atoms"] == 1
        assert result["lattice_constant"] == pytest.approx(4.05, rel=0.03)
        assert 50 < result["bulk_modulus"] < 110  # Al: 76 GPa measured
        assert result["convergence"]["converged"]
        assert result["formation_energy_per_atom"] == 0.0  # the crystal is its own reference
    assert lda["lattice_constant"] < pbe["lattice_constant"]
    assert lda["bulk_modulus"] > pbe["bulk_modulus"]
    assert lda["energy_per_atom"] != pbe["energy_per_atom"]


def test_result_records_settings_and_cost(aluminium):
    result = aluminium["PBE"]
    record = result["dft"]
    assert record["code"].startswith("GPAW ") and "PAW" in record["setups"]
    assert record["xc"] == "PBE" and record["cutoff"] == 200.0 and record["smearing"] == 0.2
    assert record["kpoints"] == [4, 4, 4] and 1 <= record["irreducible_kpoints"] <= 64
    assert record["threads"] == 1 and record["processes"] == 1 and not record["spin_polarized"]
    assert record["energies"] >= 7 and record["scf_iterations"] >= record["energies"]
    assert result["cost_cpu_seconds"] > 0.1


def test_element_without_setup_refused_before_running(dft):
    assert "U" not in setup_elements("PBE") and "Cu" in setup_elements("LDA")
    with pytest.raises(ParameterError) as err:
        dft.validate(QUANTITY, "dft", {"alloy": {"composition": {"Cu": 0.5, "U": 0.5}}})
    assert err.value.field == "alloy.composition" and "U" in str(err.value) and "PAW setup" in str(err.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"xc": "B3LYP"}, "xc"),
        ({"cutoff": 100.0}, "cutoff"),
        ({"kpoint_density": 20.0}, "kpoint_density"),
        ({"smearing": 0.0}, "smearing"),
        ({"alloy": {"composition": {"Cu": 1.0}, "supercell": 2}}, "alloy.supercell"),
    ],
)
def test_settings_outside_limits_refused(dft, change, field):
    params = {"alloy": {"composition": {"Cu": 1.0}}, **change}
    with pytest.raises(ParameterError) as err:
        dft.validate(QUANTITY, "dft", params)
    assert err.value.field == field


def test_too_many_atoms_refused(dft):
    big = bulk("Al", "fcc", a=4.05, cubic=True).repeat((3, 1, 1))  # 12 atoms
    with pytest.raises(ParameterError) as err:
        dft.validate(QUANTITY, "dft", crystal(big))
    assert err.value.field == "structure.positions"


def test_scf_that_does_not_converge_is_a_clear_fault(dft):
    params = {**crystal(bulk("Al", "fcc", a=4.05)), **COARSE, "max_scf_iterations": 2}
    with pytest.raises(InstrumentFault) as err:
        run(dft, params)
    assert "did not converge within 2 iterations" in str(err.value) and not err.value.retryable


def test_limitations_publish_functionals_and_settings(dft):
    (entry,) = dft.limitations()
    limits = entry["limitations"]
    assert entry["method"] == "dft"
    assert sorted(limits["xc"]) == ["LDA", "PBE"]
    assert limits["cutoff"] == [{"min": 200.0, "max": 800.0}]
    assert limits["kpoint_density"] == [{"min": 1.0, "max": 6.0}]
    assert limits["alloy"]["supercell"] == [{"min": 1, "max": 1, "step": 1}]
    (capability,) = dft.capabilities()
    assert "dft" in capability["json_schema_result_output"]["properties"]


def test_the_computation_is_a_plain_picklable_function(aluminium):
    params = DftBulkPropertiesParameters.model_validate({**crystal(bulk("Al", "fcc", a=4.05)), **COARSE})
    again = pickle.loads(pickle.dumps((dft_bulk_properties, params)))
    assert again[0] is dft_bulk_properties and again[1] == params
    result = DftBulkPropertiesResult.model_validate(aluminium["PBE"])
    assert pickle.loads(pickle.dumps(result)) == result


@pytest.mark.slow
def test_mixing_energy_of_an_ordered_cell(dft):
    """CuAu-like L1_0 order of Al and Cu in its 2-atom cell: a finite mixing energy by the same settings."""
    a = 3.85
    cell = np.diag([a / np.sqrt(2), a / np.sqrt(2), a])
    params = {"structure": {"cell": cell.tolist(), "positions": [[0, 0, 0], [a / np.sqrt(8), a / np.sqrt(8), a / 2]],
                            "symbols": ["Al", "Cu"]}, **COARSE, "cutoff": 300.0, "xc": "LDA"}
    result = run(dft, params)
    assert result["formula"] == "AlCu" and result["n_atoms"] == 2
    assert {r["element"] for r in result["references"]} == {"Al", "Cu"}
    assert -0.5 < result["formation_energy_per_atom"] < 0.0  # Al-Cu alloys form exothermically
    assert 3.7 < result["lattice_constant"] < 4.1  # between Cu's and Al's


def test_alloy_references_use_the_alloys_own_cell_and_mesh():
    """An fcc alloy's fcc elements are referenced in the same 4-atom cell on the same k-point mesh."""
    from labweave.drivers.atomistic.dft import mesh_of, reference_cell
    from labweave.drivers.atomistic.structures import build_crystal

    params = DftBulkPropertiesParameters.model_validate({"alloy": {"composition": {"Al": 0.75, "Cu": 0.25}}, **COARSE})
    for symbol in ("Al", "Cu"):
        found = reference_cell(symbol, params)
        assert found is not None
        atoms, mesh = found
        assert atoms.get_chemical_symbols() == [symbol] * 4
        assert np.allclose(atoms.cell.angles(), 90.0)  # the conventional cubic cell, as the alloy's
        assert mesh == mesh_of(build_crystal(params), params.kpoint_density)
    assert reference_cell("Fe", params) is None  # bcc: its own ground-state cell
    explicit = DftBulkPropertiesParameters.model_validate({**crystal(bulk("Al", "fcc", a=4.05)), **COARSE})
    assert reference_cell("Al", explicit) is None


def test_pure_element_in_the_alloy_cell_is_its_own_reference(dft):
    result = run(dft, {"alloy": {"composition": {"Al": 1.0}}, **COARSE})
    assert result["n_atoms"] == 4 and result["formation_energy_per_atom"] == 0.0
    (reference,) = result["references"]
    assert reference["energy_per_atom"] == result["energy_per_atom"]

"""The cost model: power laws fitted to measured CPU seconds, per method."""

from __future__ import annotations

import math

import pytest

from labweave.optimizer.costs import CostModel, CostRecord


def test_recovers_a_power_law_in_atoms_and_kpoints():
    # t = 0.5 s * n^2.7 * k^0.9, with multiplicative scatter of a few per cent
    scatter = [1.03, 0.97, 1.01, 0.99, 1.02, 0.98, 1.0, 1.04, 0.96]
    sizes = [(1, 10), (1, 29), (2, 10), (2, 47), (4, 10), (4, 29), (8, 4), (8, 10), (10, 29)]
    records = [CostRecord(method="dft", n_atoms=n, kpoints=k, cpu_seconds=0.5 * n**2.7 * k**0.9 * s)
               for (n, k), s in zip(sizes, scatter, strict=True)]
    model = CostModel(records)
    fitted = model.methods["dft"]
    assert fitted.atoms_exponent == pytest.approx(2.7, abs=0.1)
    assert fitted.kpoints_exponent == pytest.approx(0.9, abs=0.1)
    assert model.seconds("dft", 4, 20) == pytest.approx(0.5 * 4**2.7 * 20**0.9, rel=0.1)
    assert fitted.log_residual < 0.05


def test_a_variable_that_never_varies_gets_no_exponent():
    records = [CostRecord(method="emt", n_atoms=4, cpu_seconds=t) for t in (0.18, 0.2, 0.22)]
    model = CostModel(records)
    assert model.methods["emt"].atoms_exponent == 0.0
    assert model.seconds("emt", 32) == pytest.approx(math.exp(sum(math.log(t) for t in (0.18, 0.2, 0.22)) / 3))


def test_methods_are_fitted_apart_and_unknown_ones_named():
    records = [CostRecord(method="chgnet", n_atoms=4, cpu_seconds=2.5),
               CostRecord(method="dft", n_atoms=4, kpoints=20, cpu_seconds=90.0)]
    model = CostModel(records)
    assert model.seconds("dft", 4, 20) / model.seconds("chgnet", 4) == pytest.approx(36.0)
    with pytest.raises(KeyError, match="emt.*measured: chgnet, dft"):
        model.seconds("emt", 4)


def test_record_from_a_result():
    data = {"method": "dft", "n_atoms": 2, "cost_cpu_seconds": 12.5, "dft": {"irreducible_kpoints": 47}}
    assert CostRecord.from_result(data) == CostRecord(method="dft", n_atoms=2, kpoints=47, cpu_seconds=12.5)
    assert CostRecord.from_result({"method": "emt", "n_atoms": 4, "cost_cpu_seconds": 0.2}).kpoints == 1

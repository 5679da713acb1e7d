"""The octet82 study: SISSO reproduces SISSO++'s models, and the study reports them."""

from __future__ import annotations

import pytest

from benchmarks.octet82 import load_octet82
from benchmarks.sisso_octet import OCTET82_REFERENCE, OCTET82_SETTINGS, main, run_benchmarks
from labweave.optimizer.sisso import Feature, SissoRegressor, SissoSettings

from ..conftest import shared_path


@pytest.fixture(scope="module")
def octet_csv():
    return shared_path("data", "octet82.csv")


@pytest.fixture(scope="module")
def octet(octet_csv):
    return load_octet82(octet_csv)


def _three_sig(x: float) -> str:
    return f"{x:.3g}"


def _reference_keys(dimension: int, units: dict[str, str]) -> set[str]:
    return {Feature.from_postfix(text, units).canonical for text in OCTET82_REFERENCE[dimension][1]}


def test_octet82_reproduces_sisso_plus_plus(octet):
    reg = SissoRegressor(OCTET82_SETTINGS).fit(
        octet.X, octet.y, octet.feature_names, octet.units, target_name="dE", target_unit="eV"
    )
    assert len(reg.models_) == 4
    for dimension, model in enumerate(reg.models_, start=1):
        reference_rmse = OCTET82_REFERENCE[dimension][0]
        assert _three_sig(model.rmse) == _three_sig(reference_rmse), (dimension, model.rmse)
        assert model.rmse == pytest.approx(reference_rmse, rel=2e-5)
        assert {f.canonical for f in model.features} == _reference_keys(dimension, octet.units)
    assert reg.models_[0].features[0].expr == "((E_HOMO_B / r_p_A) / (r_sigma + r_p_B))"
    assert str(reg.models_[0].features[0].unit) == "electron_volt / angstrom ** 2"


def test_octet82_first_two_dimensions_with_a_single_residual(octet):
    settings = SissoSettings(max_rung=2, n_sis_select=10, n_residual=1, max_dimension=2)
    reg = SissoRegressor(settings).fit(octet.X, octet.y, octet.feature_names, octet.units)
    for dimension in (1, 2):
        model = reg.models_[dimension - 1]
        assert _three_sig(model.rmse) == _three_sig(OCTET82_REFERENCE[dimension][0])
        assert {f.canonical for f in model.features} == _reference_keys(dimension, octet.units)


def test_bench_reports_one_row_per_dimension(octet_csv):
    rows = run_benchmarks(octet_csv, max_dimension=1)
    assert len(rows) == 1
    row = rows[0]
    assert {"problem", "strategy", "dimension", "rmse", "descriptor", "seconds"} <= set(row)
    assert (row["problem"], row["strategy"], row["dimension"]) == ("octet82", "sisso", 1)
    assert row["descriptor"] == "((E_HOMO_B / r_p_A) / (r_sigma + r_p_B))"
    assert _three_sig(row["rmse"]) == "0.126"
    assert row["seconds"] > 0  # the time itself is a benchmark figure, not a test


def test_command_names_a_missing_file_and_a_bad_dimension(tmp_path, capsys):
    missing = tmp_path / "octet82.csv"
    with pytest.raises(SystemExit) as stop:
        main([str(missing)])
    assert stop.value.code == 2 and f"no file at {missing}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["--max-dimension", "0"])
    assert stop.value.code == 2 and "--max-dimension: at least 1, not 0" in capsys.readouterr().err

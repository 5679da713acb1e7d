"""SISSO: unit algebra, feature space, screening, l0, models, ensemble (octet82: tests/benchmarks)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from labweave.optimizer.sisso import (
    EnsembleSettings,
    Feature,
    FeatureSpace,
    SissoEnsemble,
    SissoModel,
    SissoRegressor,
    SissoSettings,
    Unit,
    l0_search,
    parse_unit,
    screen,
)
from labweave.optimizer.sisso.units import DIMENSIONLESS

def _walk(feature: Feature):
    yield feature
    for child in feature.children:
        yield from _walk(child)


# --------------------------------------------------------------------- units
def test_unit_algebra_and_parsing():
    ev, aa = parse_unit("eV"), parse_unit("angstrom")
    assert parse_unit("angstrom ** -2 * eV") == ev / aa**2
    assert str(ev / aa**2) == "electron_volt / angstrom ** 2"
    assert parse_unit("m / s^2") == Unit({"m": 1, "s": -2})
    assert parse_unit("") == DIMENSIONLESS and parse_unit(None).is_dimensionless
    assert (aa ** Fraction(1, 2)).exponents == {"angstrom": Fraction(1, 2)}
    assert (aa ** Fraction(1, 3)) ** 3 == aa
    assert parse_unit(str(aa ** Fraction(-1, 3) * ev)) == aa ** Fraction(-1, 3) * ev
    assert (ev / ev).is_dimensionless
    with pytest.raises(ValueError, match="unit"):
        parse_unit("eV^x")


def test_units_are_pint_units_compared_by_dimensionality_and_scale():
    assert parse_unit("K") == parse_unit("kelvin") and parse_unit("1 / hour") == parse_unit("hour ** -1")
    assert parse_unit("eV").dimensionality == {"[length]": 2, "[mass]": 1, "[time]": -2}
    assert parse_unit("eV") != parse_unit("J") and parse_unit("eV") != parse_unit("meV")  # columns on other scales
    assert parse_unit("mol/mol") == DIMENSIONLESS and parse_unit("1") == DIMENSIONLESS
    assert parse_unit("percent").is_dimensionless and parse_unit("percent") != DIMENSIONLESS
    with pytest.raises(ValueError, match="'J/cm2' is not a unit in pint's syntax"):
        parse_unit("J/cm2")
    with pytest.raises(ValueError, match="feature 'x2'"):
        FeatureSpace(np.ones((4, 2)), ["x1", "x2"], ["eV", "AA"], max_rung=1)


def test_operators_respect_units():
    e1 = Feature.primary("E1", parse_unit("eV"))
    e2 = Feature.primary("E2", parse_unit("eV"))
    r = Feature.primary("r", parse_unit("angstrom"))
    n = Feature.primary("n", DIMENSIONLESS)
    for op in ("add", "sub", "abs_diff"):
        with pytest.raises(ValueError, match="not allowed on units"):
            Feature.combine(op, e1, r)
        assert Feature.combine(op, e1, e2).unit == parse_unit("eV")
    assert Feature.combine("mult", e1, r).unit == parse_unit("eV * angstrom")
    assert Feature.combine("div", e1, r).unit == parse_unit("eV / angstrom")
    for op in ("exp", "neg_exp", "log", "sin", "cos"):
        with pytest.raises(ValueError, match="not allowed on units"):
            Feature.combine(op, r)
        assert Feature.combine(op, n).unit.is_dimensionless
    assert Feature.combine("sqrt", r).unit == parse_unit("angstrom ** 0.5")
    assert Feature.combine("six_pow", r).unit == parse_unit("angstrom ** 6")
    assert Feature.combine("inv", e1).unit == parse_unit("eV ** -1")


def test_feature_space_never_adds_unlike_units():
    rng = np.random.default_rng(0)
    data = np.column_stack([rng.uniform(1, 2, 30), rng.uniform(0.5, 1.5, 30), rng.uniform(2, 3, 30)])
    space = FeatureSpace(data, ["E1", "r", "E2"], ["eV", "angstrom", "eV"], max_rung=2)
    exprs = set()
    checked = 0
    for block in space.candidate_blocks():
        for row in np.flatnonzero(block.valid):
            feature = block.build(int(row))
            exprs.add(feature.expr)
            for node in _walk(feature):
                if node.op is not None and node.op.like_units:
                    assert node.children[0].unit == node.children[1].unit, node.expr
                if node.op is not None and node.op.key in ("exp", "neg_exp", "log", "sin", "cos"):
                    assert node.children[0].unit.is_dimensionless, node.expr
            checked += 1
    assert checked > 100
    assert "(E2 + E1)" in exprs and "(E2 - E1)" in exprs
    assert not any(expr in exprs for expr in ("(r + E1)", "(E2 + r)", "(E2 - r)", "(r - E1)"))
    assert "exp((E2 / E1))" in exprs  # a dimensionless ratio may be exponentiated
    assert not any(expr.startswith("exp(") and "/" not in expr for expr in exprs)


def test_feature_space_drops_copies_and_bad_values():
    rng = np.random.default_rng(1)
    a = rng.uniform(1, 2, 40)  # positive: |a| is a copy of a
    b = rng.uniform(-1, 1, 40)  # crosses zero: log and sqrt undefined
    space = FeatureSpace(np.column_stack([a, b, np.full(40, 3.0)]), ["a", "b", "k"], None, max_rung=2)
    stored = {f.expr for f in space.stored}
    assert "k" not in stored  # constant primary
    assert "(|a|)" not in stored and "(|b|)" in stored
    assert "log(b)" not in stored and "sqrt(b)" not in stored and "log(a)" in stored
    assert ("(b - a)" in stored) != ("(a - b)" in stored)  # one orientation of a difference
    assert np.all(np.isfinite(space.stored_values))


def test_feature_evaluates_and_round_trips_postfix():
    units = {"x1": "eV", "x2": "angstrom", "x3": "angstrom"}
    feature = Feature.from_postfix("x1|x2|div|x3|x2|add|div", units)
    assert feature.expr == "((x1 / x2) / (x3 + x2))"
    assert feature.unit == parse_unit("eV * angstrom^-2")
    assert feature.rung == 2 and feature.complexity == 3
    columns = {"x1": np.array([1.0, 2.0]), "x2": np.array([2.0, 4.0]), "x3": np.array([1.0, 1.0])}
    np.testing.assert_allclose(feature.evaluate(columns), [1.0 / 2.0 / 3.0, 2.0 / 4.0 / 5.0])
    assert Feature.from_postfix(feature.postfix, units).canonical == feature.canonical
    with pytest.raises(ValueError, match="postfix"):
        Feature.from_postfix("x1|nope|div", units)


# -------------------------------------------------------------- screening, l0
def test_screening_picks_the_true_feature():
    rng = np.random.default_rng(2)
    n = 60
    x = {name: rng.uniform(0.5, 2.0, n) for name in ("x1", "x2", "x3", "x4", "x5")}
    y = 1.7 * x["x1"] / x["x2"] + rng.normal(0, 0.02, n)
    data = np.column_stack(list(x.values()))
    space = FeatureSpace(data, list(x), ["eV", "angstrom", "eV", "angstrom", ""], max_rung=2)
    chosen = screen(space, y, n_select=5)
    assert len(chosen) == 5
    truth = Feature.combine("div", Feature.primary("x1", parse_unit("eV")), Feature.primary("x2", parse_unit("angstrom")))
    assert chosen[0].feature.canonical == truth.canonical
    assert chosen[0].score > 0.99
    assert [c.score for c in chosen] == sorted((c.score for c in chosen), reverse=True)
    # no two selected features are the same feature up to an affine map
    z = np.array([(c.values - c.values.mean()) / np.linalg.norm(c.values - c.values.mean()) for c in chosen])
    off_diagonal = np.abs(z @ z.T)[~np.eye(5, dtype=bool)]
    assert np.all(off_diagonal < 1 - 1e-8)
    # features chosen before are excluded
    again = screen(space, y, n_select=5, exclude=[chosen[0].values])
    assert chosen[0].feature.canonical not in {c.feature.canonical for c in again}


def test_l0_finds_the_right_pair_and_matches_brute_force():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(50, 9))
    y = 1.0 + 2.0 * values[:, 2] - 3.0 * values[:, 5] + rng.normal(0, 0.01, 50)
    fits = l0_search(values, y, 2, n_keep=3)
    assert fits[0].indices == (2, 5)
    np.testing.assert_allclose(fits[0].coefficients, [2.0, -3.0], atol=0.01)
    assert fits[0].intercept == pytest.approx(1.0, abs=0.01)
    assert [f.rmse for f in fits] == sorted(f.rmse for f in fits)
    # the batched normal equations agree with explicit least squares on every pair
    brute = {}
    for pair in itertools.combinations(range(9), 2):
        design = np.column_stack([np.ones(50), values[:, pair]])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        brute[pair] = np.sqrt(np.mean((y - design @ coef) ** 2))
    ranked = sorted(brute, key=brute.get)[:3]
    assert [f.indices for f in fits] == ranked
    assert fits[1].rmse == pytest.approx(brute[ranked[1]], rel=1e-9)
    with pytest.raises(ValueError, match="dimension"):
        l0_search(values, y, 10)


# ----------------------------------------------------------------- regressor
def _two_term_problem(seed: int, n: int):
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.uniform(1, 3, n),
            rng.uniform(0.5, 2, n),
            rng.uniform(-2, 2, n),
            rng.uniform(0, 5, n),
            rng.uniform(1, 2, n),
        ]
    )
    y = 1.5 * X[:, 0] / X[:, 1] + 0.4 * X[:, 2] ** 2 + rng.normal(0, 0.05, n)
    return X, y


NAMES = ["a", "b", "c", "d", "e"]
UNITS = ["eV", "angstrom", "", "K", ""]


def test_regressor_recovers_a_two_term_law_and_predicts_new_data():
    X, y = _two_term_problem(4, 60)
    reg = SissoRegressor(SissoSettings(max_rung=1, n_sis_select=5, max_dimension=2)).fit(X, y, NAMES, UNITS)
    model = reg.models_[1]
    assert {f.expr for f in model.features} == {"(a / b)", "(c^2)"}
    assert model.rmse < 0.07
    X_new, y_new = _two_term_problem(5, 50)
    assert np.sqrt(np.mean((reg.predict(X_new) - y_new) ** 2)) < 0.08
    assert reg.models_[0].rmse > model.rmse


def test_formulas_print_readably_and_models_round_trip():
    X, y = _two_term_problem(6, 40)
    reg = SissoRegressor(SissoSettings(max_rung=1, n_sis_select=5, max_dimension=2)).fit(
        X, y, NAMES, UNITS, target_name="E_f", target_unit="eV"
    )
    model = reg.models_[1]
    text = model.formula(4)
    assert text.startswith("E_f = ")
    assert "(a / b)" in text and "(c^2)" in text
    assert "*" in text and "e+" not in text and "nan" not in text
    rebuilt = SissoModel.from_dict(model.to_dict())
    np.testing.assert_allclose(rebuilt.predict(X, NAMES), model.predict(X, NAMES))
    assert rebuilt.formula() == model.formula()


def test_cross_validation_chooses_a_dimension():
    X, y = _two_term_problem(7, 60)
    reg = SissoRegressor(SissoSettings(max_rung=1, n_sis_select=5, max_dimension=3, cv_folds=4)).fit(X, y, NAMES, UNITS)
    assert reg.cv_rmse_.shape == (3,) and np.all(np.isfinite(reg.cv_rmse_))
    assert reg.cv_rmse_[1] < 0.5 * reg.cv_rmse_[0]
    assert reg.dimension_ in (2, 3)
    assert reg.best_model_.dimension == reg.dimension_


def test_bad_input_names_the_field():
    X, y = _two_term_problem(8, 20)
    with pytest.raises(ValueError, match="feature_names"):
        SissoRegressor().fit(X, y, NAMES[:4])
    with pytest.raises(ValueError, match="y"):
        SissoRegressor().fit(X, y[:10], NAMES)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X"):
        SissoRegressor(SissoSettings(max_rung=1)).fit(bad, y, NAMES)
    with pytest.raises(ValueError, match="units"):
        SissoRegressor(SissoSettings(max_rung=1)).fit(X, y, NAMES, {"zz": "eV"})
    with pytest.raises(ValueError, match="operators"):
        SissoSettings(operators=("add", "tanh"))
    with pytest.raises(ValueError, match="n_sis_select"):
        SissoSettings(n_sis_select=0)


# ------------------------------------------------------------------ ensemble
def test_ensemble_uncertainty_is_calibrated_on_held_out_points():
    X, y = _two_term_problem(9, 60)
    X_test, y_test = _two_term_problem(10, 400)
    ensemble = SissoEnsemble(
        EnsembleSettings(
            n_models=16,
            dimension=2,
            feature_dropout=0.2,
            seed=0,
            sisso=SissoSettings(max_rung=1, n_sis_select=5),
        )
    ).fit(X, y, NAMES, UNITS)
    mean, std = ensemble.predict(X_test)
    assert mean.shape == std.shape == (400,)
    assert np.all(std > 0)
    z = np.abs(mean - y_test) / std
    within_2 = np.mean(z < 2.0)
    within_1 = np.mean(z < 1.0)
    assert 0.8 <= within_2 <= 0.995, within_2
    assert 0.5 <= within_1 <= 0.9, within_1
    # the members really differ: bootstrap and dropout give different descriptors
    assert len({tuple(sorted(f.canonical for f in m.features)) for m in ensemble.members_}) > 1
    # the spread grows away from the data (extrapolation in a, b)
    far = X_test[:50].copy()
    far[:, 0] *= 4.0
    far[:, 1] *= 0.3
    assert np.median(ensemble.predict(far)[1]) > 2 * np.median(std[:50])


def test_ensemble_formulas_and_persistence():
    X, y = _two_term_problem(11, 40)
    ensemble = SissoEnsemble(n_models=6, dimension=1, seed=3, sisso=SissoSettings(max_rung=1, n_sis_select=4))
    ensemble.fit(X, y, NAMES, UNITS, target_name="E_f")
    formulas = ensemble.formulas()
    assert len(formulas) == 6 and all(text.startswith("E_f = ") for text in formulas)
    assert all(any(name in text for name in NAMES) for text in formulas)
    top_descriptor, count = ensemble.descriptor_frequencies()[0]
    assert count >= 1 and isinstance(top_descriptor, str)
    rebuilt = SissoEnsemble.from_dict(ensemble.to_dict())
    np.testing.assert_allclose(rebuilt.predict(X)[0], ensemble.predict(X)[0])
    np.testing.assert_allclose(rebuilt.predict(X)[1], ensemble.predict(X)[1])
    with pytest.raises(RuntimeError, match="fit"):
        SissoEnsemble().predict(X)


def test_ensemble_checks_its_data_as_the_regressor_does_before_training_a_member():
    X, y = _two_term_problem(8, 20)
    ensemble = SissoEnsemble(n_models=2, dimension=1, sisso=SissoSettings(max_rung=1))
    with pytest.raises(ValueError, match="feature_names: 4 names for 5 columns"):
        ensemble.fit(X, y, NAMES[:4])
    with pytest.raises(ValueError, match="y: 10 values for 20 samples"):
        ensemble.fit(X, y[:10], NAMES)
    with pytest.raises(ValueError, match="y: the property is constant"):
        ensemble.fit(X, np.ones_like(y), NAMES)
    with pytest.raises(ValueError, match="at least 5 samples"):
        ensemble.fit(X[:4], y[:4], NAMES)
    assert ensemble.members_ == []

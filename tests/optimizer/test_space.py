"""Search spaces: encoding, constraints, sampling and validation."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from labweave.optimizer.space import ParameterError, SearchSpace

FRACTIONS = [
    {"name": "ec", "lower": 0.1, "upper": 0.6},
    {"name": "emc", "lower": 0.2, "upper": 0.85},
    {"name": "lipf6", "lower": 0.05, "upper": 0.2},
]
SUM_TO_ONE = {"coefficients": {"ec": 1, "emc": 1, "lipf6": 1}, "relation": "==", "rhs": 1.0}


@pytest.fixture
def mixed_space() -> SearchSpace:
    return SearchSpace.from_parameters(
        [
            *FRACTIONS,
            {"kind": "integer", "name": "pulses", "lower": 100, "upper": 2000},
            {"kind": "categorical", "name": "additive", "choices": ["none", "VC", "FEC"]},
            {"name": "pressure", "lower": 1e-3, "upper": 10.0, "log_scale": True},
        ],
        [SUM_TO_ONE, {"coefficients": {"ec": 1.0, "emc": -1.0}, "relation": "<=", "rhs": 0.2}],
    )


def test_encode_decode_round_trip(mixed_space: SearchSpace) -> None:
    point = {"ec": 0.3, "emc": 0.58, "lipf6": 0.12, "pulses": 750, "additive": "FEC", "pressure": 0.05}
    X = mixed_space.encode([point])
    assert X.shape == (1, 6) and X.dtype == torch.float64
    assert X[0, 4] == 2.0  # categorical as its code
    assert X[0, 5] == pytest.approx((math.log(0.05) - math.log(1e-3)) / (math.log(10) - math.log(1e-3)))
    (back,) = mixed_space.decode(X)
    assert back["additive"] == "FEC" and back["pulses"] == 750 and isinstance(back["pulses"], int)
    for name in ("ec", "emc", "lipf6", "pressure"):
        assert back[name] == pytest.approx(point[name], rel=1e-12)
    # an optimiser's rounding error at a bound decodes to the bound itself, not to 2e-11 of it
    lower, upper = mixed_space.bounds
    X[0, 0], X[0, 5] = lower[0] + 3e-11, upper[5] - 3e-11
    (snapped,) = mixed_space.decode(X)
    ec = next(p for p in mixed_space.parameters if p.name == "ec")
    assert snapped["ec"] == ec.lower and snapped["pressure"] == 10.0
    X[0, 0] = lower[0] + 1e-6
    assert mixed_space.decode(X)[0]["ec"] > ec.lower


def test_samples_respect_constraints_and_are_reproducible(mixed_space: SearchSpace) -> None:
    X = mixed_space.sample(64, seed=3)
    assert X.shape == (64, 6)
    assert bool(mixed_space.is_feasible(X).all())
    for point in mixed_space.decode(X):
        mixed_space.validate(point)  # raises if a bound or constraint is broken
        assert point["ec"] + point["emc"] + point["lipf6"] == pytest.approx(1.0, abs=1e-6)
        assert point["ec"] - point["emc"] <= 0.2 + 1e-6
    assert torch.equal(X, mixed_space.sample(64, seed=3))
    assert not torch.equal(X, mixed_space.sample(64, seed=4))
    # Sobol points are space-filling: every category and both halves of the pulse range appear.
    points = mixed_space.decode(X)
    assert {p["additive"] for p in points} == {"none", "VC", "FEC"}
    assert min(p["pulses"] for p in points) < 1050 < max(p["pulses"] for p in points)


def test_botorch_constraints_match_the_parameter_constraints(mixed_space: SearchSpace) -> None:
    X = mixed_space.sample(16, seed=0)
    ((idx, coef, rhs),) = mixed_space.equality_constraints()
    assert torch.allclose(X[:, idx] @ coef, torch.full((16,), rhs, dtype=torch.float64), atol=1e-9)
    ((idx, coef, rhs),) = mixed_space.inequality_constraints()
    assert bool((X[:, idx] @ coef >= rhs - 1e-9).all())
    bounds = mixed_space.bounds
    assert bounds[1, 4] == 2.0 and bounds[1, 0] == 1.0
    assert mixed_space.categorical_dims == {4: [0.0, 1.0, 2.0]}
    assert len(mixed_space.integer_dims[3]) == 1901


def test_validation_names_the_parameter(mixed_space: SearchSpace) -> None:
    good = {"ec": 0.3, "emc": 0.58, "lipf6": 0.12, "pulses": 750, "additive": "VC", "pressure": 0.05}
    cases = {
        "pulses": {**good, "pulses": 7.5},
        "additive": {**good, "additive": "DMC"},
        "pressure": {**good, "pressure": 20.0},
        "colour": {**good, "colour": "red"},
    }
    for name, point in cases.items():
        with pytest.raises(ParameterError) as info:
            mixed_space.validate(point)
        assert info.value.parameter == name
        assert name in str(info.value)
    missing = dict(good)
    del missing["ec"]
    with pytest.raises(ParameterError, match="ec: missing"):
        mixed_space.validate(missing)
    with pytest.raises(ParameterError, match="ec,emc,lipf6: violates ec \\+ emc \\+ lipf6 == 1"):
        mixed_space.validate({**good, "ec": 0.35})
    with pytest.raises(ParameterError, match="ec: expected a number"):
        mixed_space.validate({**good, "ec": "0.3"})


def test_invalid_definitions_are_rejected() -> None:
    with pytest.raises(ParameterError, match="n: an integer parameter cannot enter an equality"):
        SearchSpace.from_parameters(
            [{"kind": "integer", "name": "n", "lower": 0, "upper": 4}, {"name": "x", "lower": 0, "upper": 1}],
            [{"coefficients": {"n": 1, "x": 1}, "relation": "==", "rhs": 2}],
        )
    with pytest.raises(ValidationError, match="upper"):
        SearchSpace.from_parameters([{"name": "x", "lower": 1, "upper": 0}])
    with pytest.raises(ValidationError, match="log-scale parameter 'p'"):
        SearchSpace.from_parameters(
            [{"name": "p", "lower": 1e-3, "upper": 1, "log_scale": True}],
            [{"coefficients": {"p": 1}, "relation": "<=", "rhs": 0.5}],
        )
    with pytest.raises(ValidationError, match="duplicate"):
        SearchSpace.from_parameters([{"name": "x", "lower": 0, "upper": 1}, {"name": "x", "lower": 0, "upper": 2}])


def test_infeasible_constraints_raise() -> None:
    space = SearchSpace.from_parameters(
        FRACTIONS, [{"coefficients": {"ec": 1, "emc": 1, "lipf6": 1}, "relation": "==", "rhs": 2.0}]
    )
    with pytest.raises(ValueError):
        space.sample(4, seed=0)


def test_round_snaps_integers_and_codes(mixed_space: SearchSpace) -> None:
    X = mixed_space.sample(1, seed=1)
    X[0, 3] = 0.123456
    X[0, 4] = 1.4
    R = mixed_space.round(X)
    assert R[0, 4] == 1.0
    assert (R[0, 3] * 1900).item() == pytest.approx(round(0.123456 * 1900))

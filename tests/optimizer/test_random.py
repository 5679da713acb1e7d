"""The random baseline: whole-space draws, and draws from a candidate pool."""

from __future__ import annotations

import pydantic
import pytest

from labweave.optimizer.pools import pool_points
from labweave.optimizer.space import SearchSpace
from labweave.optimizer.strategies import get_strategy
from labweave.schemas.campaign import ContinuousParameter, LinearConstraint, Objective

ELEMENTS = ("Ag", "Au", "Cu", "Pt")
OBJECTIVE = [Objective(name="e", path="e", direction="minimize")]


def fractions_space() -> SearchSpace:
    names = [f"x_{e}" for e in ELEMENTS]
    return SearchSpace.from_parameters(
        [ContinuousParameter(name=n, lower=0.0, upper=1.0) for n in names],
        [LinearConstraint(coefficients=dict.fromkeys(names, 1.0), relation="==", rhs=1.0)],
    )


GRID = {"kind": "composition_grid", "divisions": 4, "min_components": 2, "max_components": 3}


def test_pool_draws_cover_the_pool_once_in_a_seeded_order_and_then_stop():
    space = fractions_space()
    candidates = pool_points(get_strategy("random", {"pool": GRID}, space=space, objectives=OBJECTIVE).settings.pool,
                             space)
    assert len(candidates) == 6 * 3 + 4 * 3  # binaries (3 per pair) and ternaries (3 per triple) on quarters
    strategy = get_strategy("random", {"seed": 4, "pool": GRID}, space=space, objectives=OBJECTIVE)
    drawn, observations = [], []
    while True:
        batch = strategy.propose(observations, pending=[], n=4)
        if not batch:
            break
        for proposal in batch:
            assert proposal.reason.startswith("pool draw")
            drawn.append(proposal.parameters)
            observations.append((proposal.parameters, {"e": 0.0}))
    assert sorted(map(str, drawn)) == sorted(map(str, candidates))  # every candidate, none twice
    # a restarted campaign continues where it was (pending requests count), another seed draws otherwise
    again = get_strategy("random", {"seed": 4, "pool": GRID}, space=space, objectives=OBJECTIVE)
    assert again.propose(observations[:3], pending=[drawn[3]], n=2)[0].parameters == drawn[4]
    other = get_strategy("random", {"seed": 5, "pool": GRID}, space=space, objectives=OBJECTIVE)
    assert [p.parameters for p in other.propose([], n=5)] != drawn[:5]


def test_a_pool_that_does_not_fit_the_space_is_refused_by_name():
    space = fractions_space()
    with pytest.raises(ValueError, match=r"pool.components: \['x_Fe'\]"):
        get_strategy("random", {"pool": {**GRID, "components": ["x_Ag", "x_Fe"]}}, space=space, objectives=OBJECTIVE)
    with pytest.raises(ValueError, match=r"pool.points\[1\]"):
        get_strategy("random", {"pool": {"kind": "explicit", "points": [
            {"x_Ag": 0.5, "x_Au": 0.5, "x_Cu": 0.0, "x_Pt": 0.0},
            {"x_Ag": 0.9, "x_Au": 0.5, "x_Cu": 0.0, "x_Pt": 0.0}]}}, space=space, objectives=OBJECTIVE)
    with pytest.raises(pydantic.ValidationError, match="divisions"):
        get_strategy("random", {"pool": {**GRID, "divisions": 0}}, space=space, objectives=OBJECTIVE)


def test_without_a_pool_random_draws_fill_the_space():
    strategy = get_strategy("random", {"seed": 1}, space=fractions_space(), objectives=OBJECTIVE)
    points = [p.parameters for p in strategy.propose([], n=8)]
    assert len({str(p) for p in points}) == 8
    assert all(sum(p.values()) == pytest.approx(1.0) for p in points)
    assert any(0.0 < v < 0.25 for p in points for v in p.values())  # off any grid

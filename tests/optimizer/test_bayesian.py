"""The strategies: registry, random baseline, and Bayesian optimisation with BoTorch."""

from __future__ import annotations


import pytest
import torch
from pydantic import ValidationError

from benchmarks.problems import Branin, FormulationToy, Hartmann6
from labweave.optimizer.strategies import BayesianStrategy, Proposal, get_strategy
from labweave.schemas.campaign import Objective, OutcomeConstraint

#: Small optimiser settings that keep constrained and mixed tests quick.
QUICK = {"num_restarts": 2, "raw_samples": 64, "maxiter": 25, "mc_samples": 32}


def observe(problem, n: int, seed: int = 0):
    points = problem.space.sample_points(n, seed=seed)
    return list(zip(points, problem.evaluate(points)))


def inside(problem, proposal: Proposal) -> bool:
    problem.space.validate(proposal.parameters)
    return True


def test_registry_builds_strategies_and_checks_settings() -> None:
    problem = Branin()
    strategy = get_strategy("bayesian", {"initial_design": 2}, space=problem.space, objectives=problem.objectives)
    assert isinstance(strategy, BayesianStrategy) and strategy.settings.initial_design == 2
    with pytest.raises(KeyError, match="unknown strategy 'bogus'"):
        get_strategy("bogus", space=problem.space, objectives=problem.objectives)
    with pytest.raises(ValidationError, match="num_restarts"):
        get_strategy("bayesian", {"num_restarts": 0}, space=problem.space, objectives=problem.objectives)
    with pytest.raises(ValidationError, match="kappa"):
        get_strategy("bayesian", {"kappa": 2.0}, space=problem.space, objectives=problem.objectives)


def test_initial_design_comes_first_and_continues_across_calls() -> None:
    problem = Hartmann6()
    strategy = get_strategy("bayesian", {"initial_design": 5, "seed": 3}, space=problem.space, objectives=problem.objectives)
    first = strategy.propose([], n=3)
    assert all(p.reason.startswith("initial design") and p.acquisition_value is None for p in first)
    observed = [(p.parameters, v) for p, v in zip(first[:2], problem.evaluate([p.parameters for p in first[:2]]))]
    # Two measured, one in flight: the next two design points are points 4 and 5 of the same sequence.
    rest = strategy.propose(observed, pending=[first[2].parameters], n=2)
    design = problem.space.sample_points(5, seed=3)
    assert [p.parameters for p in first] == design[:3]
    assert [p.parameters for p in rest] == design[3:]


def test_bayesian_proposal_is_inside_bounds_with_provenance() -> None:
    problem = Branin()
    observations = observe(problem, 8)
    strategy = get_strategy("bayesian", {"noiseless": True}, space=problem.space, objectives=problem.objectives)
    (proposal,) = strategy.propose(observations)
    assert inside(problem, proposal)
    assert proposal.strategy == "bayesian" and "LogEI" in proposal.reason
    assert proposal.acquisition_value is not None and torch.isfinite(torch.tensor(proposal.acquisition_value))
    assert proposal.predicted_std["y"] > 0 and set(proposal.predicted_mean) == {"y"}
    assert len(proposal.model_version) == 16
    assert strategy.model_version(observations, []) == proposal.model_version
    assert strategy.model_version(observations[:-1], []) != proposal.model_version


def test_pending_points_change_the_proposal() -> None:
    problem = Branin()
    observations = observe(problem, 10, seed=1)
    strategy = get_strategy("bayesian", {"seed": 1}, space=problem.space, objectives=problem.objectives)
    (alone,) = strategy.propose(observations)
    (with_pending,) = strategy.propose(observations, pending=[alone.parameters])
    assert "1 in flight" in with_pending.reason
    a = problem.space.encode([alone.parameters])
    b = problem.space.encode([with_pending.parameters])
    assert (a - b).abs().max() > 1e-3, "the proposal must not repeat a request in flight"
    batch = strategy.propose(observations, n=2)
    x = problem.space.encode([p.parameters for p in batch])
    assert (x[0] - x[1]).abs().max() > 1e-3


def test_constrained_categorical_space() -> None:
    problem = FormulationToy(seed=0)
    observations = observe(problem, 6, seed=2)
    strategy = get_strategy(
        "bayesian", {**QUICK, "seed": 2, "noiseless": True}, space=problem.space, objectives=problem.objectives
    )
    proposals = strategy.propose(observations, n=1)
    for proposal in proposals:
        assert inside(problem, proposal)
        p = proposal.parameters
        assert p["ec"] + p["emc"] + p["lipf6"] == pytest.approx(1.0, abs=1e-6)
        assert p["additive"] in {"none", "VC", "FEC"}
        assert proposal.predicted_mean["cycle_life"] > 0


@pytest.mark.parametrize("method", ["parego", "nehvi"])
def test_multi_objective_and_outcome_constraints(method: str) -> None:
    problem = Branin()
    objectives = [
        Objective(name="y", path="y", direction="minimize"),
        Objective(name="x0", path="x0", direction="maximize", threshold=-5.0),
    ]
    constraints = [OutcomeConstraint(name="x1", path="x1", relation="<=", bound=10.0)]
    points = problem.space.sample_points(8, seed=4)
    observations = [(p, {"y": v["y"], "x0": p["x0"], "x1": p["x1"]}) for p, v in zip(points, problem.evaluate(points))]
    strategy = get_strategy(
        "bayesian",
        {**QUICK, "multi_objective": method},
        space=problem.space,
        objectives=objectives,
        outcome_constraints=constraints,
    )
    n = 2 if method == "parego" else 1  # qLogNEHVI batches are slow (tens of seconds for q=2)
    proposals = strategy.propose(observations, n=n)
    assert len(proposals) == n
    expected = {"parego": "qLogNParEGO", "nehvi": "qLogNEHVI"}[method]
    for proposal in proposals:
        assert inside(problem, proposal) and expected in proposal.reason
        assert set(proposal.predicted_mean) == {"y", "x0"}
    # The model of x0 (which is the input itself) predicts it closely.
    assert proposals[0].predicted_mean["x0"] == pytest.approx(proposals[0].parameters["x0"], abs=1.0)


def test_missing_objective_value_is_named() -> None:
    problem = Branin()
    observations = observe(problem, 5)
    observations[2] = (observations[2][0], {})
    strategy = get_strategy("bayesian", space=problem.space, objectives=problem.objectives)
    with pytest.raises(ValueError, match=r"observations\[2\]: missing value 'y'"):
        strategy.propose(observations)


def test_random_strategy_is_feasible_and_reproducible() -> None:
    problem = FormulationToy()
    for method in ("random", "sobol"):
        strategy = get_strategy("random", {"method": method, "seed": 5}, space=problem.space, objectives=problem.objectives)
        first = strategy.propose([], n=4)
        assert [p.parameters for p in first] == [p.parameters for p in strategy.propose([], n=4)]
        for proposal in first:
            assert inside(problem, proposal)


def noisy_parabola(lucky_at: float, lucky_by: float, seed: int = 3) -> list:
    """Noisy measurements of -(x - 0.7)^2 on a grid, one of them lucky (six noise deviations up)."""
    generator = torch.Generator().manual_seed(seed)
    xs = [i / 15 for i in range(16)]
    observations = []
    for x in xs:
        y = -((x - 0.7) ** 2) + 0.02 * float(torch.randn(1, generator=generator))
        if x == lucky_at:
            y += lucky_by
        observations.append(({"x": x}, {"y": y}))
    return observations


def test_noisy_recommendation_sets_outliers_aside_and_pools_neighbours() -> None:
    from labweave.optimizer.space import SearchSpace

    space = SearchSpace.from_parameters([{"name": "x", "lower": 0.0, "upper": 1.0}])
    objectives = [Objective(name="y", path="y")]
    observations = noisy_parabola(lucky_at=7 / 15, lucky_by=0.12)
    best_single = max(observations, key=lambda o: o[1]["y"])[0]
    assert best_single == {"x": 7 / 15}  # the lucky cell, 0.23 from the optimum
    assert get_strategy("random", space=space, objectives=objectives).recommend(observations) == best_single
    noisy = get_strategy("bayesian", {"noiseless": False, "initial_design": 4}, space=space, objectives=objectives)
    assert abs(noisy.recommend(observations)["x"] - 0.7) <= 0.1
    [proposal] = noisy.propose(observations)
    assert proposal.reason.endswith("set aside as outliers: observation #8"), proposal.reason
    for seed in range(4):  # plain Gaussian scatter: nothing is set aside
        [plain] = noisy.propose(noisy_parabola(lucky_at=7 / 15, lucky_by=0.0, seed=seed))
        assert "outlier" not in plain.reason, (seed, plain.reason)
    # taken at face value, the lucky cell bends the GP's lengthscale until the model believes it
    trusting = get_strategy("bayesian", {"noiseless": False, "initial_design": 4, "robust": False}, space=space,
                            objectives=objectives)
    assert trusting.recommend(observations) == best_single
    exact = get_strategy("bayesian", {"noiseless": True, "initial_design": 4}, space=space, objectives=objectives)
    assert exact.recommend(observations) == best_single  # exact values: the best one is the answer
    # an outcome constraint rules points out of the recommendation
    guarded = get_strategy("bayesian", {"noiseless": False, "initial_design": 4}, space=space, objectives=objectives,
                           outcome_constraints=[OutcomeConstraint(name="spread", path="spread", relation="<=", bound=1.0)])
    flagged = [(p, {**v, "spread": 5.0 if abs(p["x"] - 0.7) < 0.15 else 0.5}) for p, v in observations]
    assert abs(guarded.recommend(flagged)["x"] - 0.7) >= 0.15
    assert guarded.recommend([(p, {**v, "spread": 5.0}) for p, v in observations]) is None
    two = [Objective(name="y", path="y"), Objective(name="z", path="z")]
    pareto = get_strategy("bayesian", {"noiseless": False}, space=space, objectives=two)
    assert pareto.recommend([(p, {**v, "z": 0.0}) for p, v in observations]) is None


def test_a_pool_campaign_proposes_only_free_pool_candidates():
    import numpy as np

    from labweave.optimizer.strategies import get_strategy
    from labweave.optimizer.space import SearchSpace
    from labweave.schemas.campaign import Objective

    rng = np.random.default_rng(0)
    space = SearchSpace.from_parameters([{"name": f"x{i}", "lower": 0.0, "upper": 1.0} for i in range(3)])
    points = [{f"x{i}": float(v) for i, v in enumerate(row)} for row in rng.uniform(0, 1, (40, 3))]
    strategy = get_strategy(
        "bayesian",
        {"pool": {"kind": "explicit", "points": points}, "initial_design": 4, "noiseless": True},
        space=space,
        objectives=[Objective(name="y", path="y")],
    )

    def value(p):
        return -((p["x0"] - 0.3) ** 2) - (p["x1"] - 0.6) ** 2

    def index(p):
        return int(np.argmin([max(abs(p[k] - q[k]) for k in p) for q in points]))

    design = strategy.propose([], n=4)
    assert all("pool draw" in p.reason for p in design)
    observations = [(points[index(p.parameters)], {"y": value(p.parameters)}) for p in design]
    pending = [points[index(p.parameters)] for p in strategy.propose(observations, n=1)]
    batch = strategy.propose(observations, pending=pending, n=3)
    chosen = [index(p.parameters) for p in batch]
    assert len(set(chosen)) == 3
    assert not set(chosen) & {index(p) for p in [o[0] for o in observations] + pending}
    assert all(max(abs(p.parameters[k] - points[i][k]) for k in p.parameters) < 1e-9 for p, i in zip(batch, chosen))
    assert all("free pool candidates" in p.reason for p in batch)
    everything = [(p, {"y": value(p)}) for p in points[:38]]
    assert len(strategy.propose(everything, n=5)) == 2


def test_a_pool_proposal_depends_on_its_inputs_not_on_the_process_random_state():
    """The acquisition's baseline pruning draws samples: seeded, a restarted daemon proposes the same batch."""
    import numpy as np

    from labweave.optimizer.space import SearchSpace

    rng = np.random.default_rng(3)
    space = SearchSpace.from_parameters([{"name": f"x{i}", "lower": 0.0, "upper": 1.0} for i in range(3)])
    points = [{f"x{i}": float(v) for i, v in enumerate(row)} for row in rng.uniform(0, 1, (100, 3))]
    observations = [(p, {"y": float(np.sin(5 * p["x0"]) + p["x1"] - p["x2"] ** 2 + 0.05 * rng.normal())})
                    for p in points[:40]]  # enough near the best that the pruning's draws matter
    settings = {"pool": {"kind": "explicit", "points": points}, "initial_design": 4, "seed": 7}
    batches = []
    for state in (1, 2):
        strategy = get_strategy("bayesian", settings, space=space, objectives=[Objective(name="y", path="y")])
        torch.manual_seed(state)
        torch.rand(state * 5)
        batches.append([(p.parameters, p.acquisition_value) for p in strategy.propose(observations, [points[41]], n=2)])
    assert batches[0] == batches[1]

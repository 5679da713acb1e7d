"""Multi-fidelity strategy: co-kriging surrogate, cost-aware choice of CHGNet or EMT, budget, pending.

The campaign replays use the fidelity study's table (``benchmarks/data/fcc_alloys_emt_chgnet.json``):
real EMT and CHGNet calculations of 168 fcc alloys made by the atomistic drivers. The study's own
tests (the table, the comparison with the baselines) are in ``tests/benchmarks/test_fidelity.py``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from benchmarks import fidelity as bench
from labweave.optimizer.campaign import EXAMPLES, Campaign, load_campaign
from labweave.optimizer.cokriging import (
    AutoregressiveGP,
    default_start,
    negative_log_posterior,
    scale_basis,
    squared_differences,
)
from labweave.optimizer.fidelity import CostBudget, Fidelity, FidelityLadder
from labweave.optimizer.pools import composition_grid
from labweave.optimizer.space import SearchSpace
from labweave.optimizer.strategies import get_strategy
from labweave.optimizer.strategies.multifidelity import (
    FidelityProposal,
    MultiFidelitySettings,
    MultiFidelityStrategy,
    log_expected_improvement,
)
from labweave.schemas.campaign import Objective, OutcomeConstraint

BUDGET = 200.0


@pytest.fixture(scope="module")
def oracle() -> bench.AlloyOracle:
    return bench.AlloyOracle(bench.load_alloy_table())


def make_strategy(oracle: bench.AlloyOracle, seed: int = 0, **extra) -> MultiFidelityStrategy:
    settings = bench.multifidelity_settings(oracle, extra.pop("budget", BUDGET), seed, **extra)
    return MultiFidelityStrategy(bench.alloy_space(oracle.elements), [bench.FORMATION_ENERGY], settings)


def observe(oracle: bench.AlloyOracle, parameters: dict) -> tuple[dict, dict]:
    return parameters, {"formation_energy": oracle.value(parameters, parameters["method"])}


# ----------------------------------------------------------------------------- pool
def test_composition_grid_enumerates_binaries_and_ternaries_on_quarters():
    grid = composition_grid(bench.ALLOY_ELEMENTS, divisions=4, min_components=2, max_components=3)
    assert len(grid) == 21 * 3 + 35 * 3 == 168
    keys = {bench.composition_key(p) for p in grid}
    assert len(keys) == 168
    for point in grid:
        assert sum(point.values()) == pytest.approx(1.0)
        assert all((4 * x) == int(4 * x) for x in point.values())
        assert 2 <= sum(x > 0 for x in point.values()) <= 3
    assert len(composition_grid(["a", "b", "c"], 2)) == 3 + 3  # pure corners and 50/50 edges
    with pytest.raises(ValueError, match="divisions"):
        composition_grid(["a", "b"], 0)
    with pytest.raises(ValueError, match="max_components"):
        composition_grid(["a", "b"], 4, min_components=3)


# ------------------------------------------------------------------------- settings
def test_settings_name_the_faulty_field():
    with pytest.raises(ValidationError, match="fidelities"):
        MultiFidelitySettings(fidelities=[{"method": "emt", "cost": 1}, {"method": "emt", "cost": 2}])
    with pytest.raises(ValidationError, match="cost"):
        MultiFidelitySettings(fidelities=[{"method": "emt", "cost": 0}])
    with pytest.raises(ValidationError, match="budget"):
        MultiFidelitySettings(budget=-5)
    with pytest.raises(ValidationError, match="pool"):
        MultiFidelitySettings(pool={"kind": "sobol"})


def test_strategy_checks_the_space_and_objectives(oracle):
    space = bench.alloy_space(oracle.elements)
    objective = [bench.FORMATION_ENERGY]
    with pytest.raises(ValueError, match="fidelity_parameter"):
        MultiFidelityStrategy(space, objective, {"fidelity_parameter": "calculator"})
    with pytest.raises(ValueError, match="fidelities"):
        MultiFidelityStrategy(space, objective, {"fidelities": [{"method": "vasp", "cost": 100}]})
    with pytest.raises(ValueError, match="objectives"):
        MultiFidelityStrategy(space, objective + [Objective(name="b", path="bulk_modulus")])
    with pytest.raises(ValueError, match="outcome_constraints"):
        MultiFidelityStrategy(
            space, objective, outcome_constraints=[OutcomeConstraint(name="c", path="x", relation="<=", bound=1)]
        )
    with pytest.raises(ValueError, match="pool.components"):
        MultiFidelityStrategy(space, objective, {"pool": {"kind": "composition_grid", "components": ["x_Cu", "x_Au"]}})
    continuous = SearchSpace.from_parameters(
        [{"name": "x", "lower": 0, "upper": 1}, {"name": "method", "lower": 0, "upper": 1}]
    )
    with pytest.raises(ValueError, match="categorical"):
        MultiFidelityStrategy(continuous, objective)


def test_registered_by_name_and_example_campaign_loads():
    spec = load_campaign(EXAMPLES / "materials.toml")
    campaign = Campaign(spec)
    strategy = campaign.make_strategy()
    assert isinstance(strategy, MultiFidelityStrategy)
    assert strategy.settings.budget == 300.0 and strategy.ladder.target.method == "emt"
    assert len(strategy.pool) == 168
    again = get_strategy("multifidelity", spec.strategy.settings, space=campaign.space, objectives=spec.objectives)
    assert isinstance(again, MultiFidelityStrategy)
    (first,) = strategy.propose([], n=1)
    request = campaign.build_request(first.parameters)
    composition = request["parameters"]["chgnet"]["alloy"]["composition"]
    assert {e: composition[e] for e in composition if composition[e] > 0} == {
        e: first.parameters[bench.fraction_name(e)]
        for e in bench.ALLOY_ELEMENTS
        if first.parameters[bench.fraction_name(e)] > 0
    }


# ------------------------------------------------------------------------ the model
def test_fidelity_ladder_costs_and_budget():
    ladder = FidelityLadder([Fidelity(method="chgnet", cost=1), Fidelity(method="emt", cost=20, label="EMT confirm")])
    assert ladder.target.method == "emt" and ladder.rung("chgnet") == 0
    assert ladder.spent(["chgnet", "emt", "chgnet"]) == 22
    assert ladder.level("emt") == 1.0 and ladder.level("chgnet") == pytest.approx(0.05)
    assert ladder.label("chgnet") == "chgnet" and ladder.label("emt") == "EMT confirm"
    with pytest.raises(KeyError, match="vasp"):
        ladder.rung("vasp")
    with pytest.raises(ValueError, match="fidelities"):
        FidelityLadder([Fidelity(method="emt", cost=1), Fidelity(method="emt", cost=2)])
    budget = CostBudget(total=30, committed=8)
    assert budget.allows(1, keep=20) and not budget.allows(3, keep=20) and budget.after(2).remaining == 20
    assert CostBudget(total=None, committed=1e9).allows(1e9)


@pytest.mark.parametrize("basis", ["constant", "linear", "presence"])
@pytest.mark.parametrize("rungs", [1, 2, 3])
def test_marginal_likelihood_gradient_matches_finite_differences(rungs, basis):
    rng = np.random.default_rng(rungs)
    n, d = 25, 3
    X = rng.random((n, d)) * (rng.random((n, d)) > 0.3)  # some zeros, for the presence basis
    r = rng.integers(0, rungs, n)
    z = rng.standard_normal(n)
    theta = default_start(rungs, d, basis)
    theta = theta + 0.3 * rng.standard_normal(len(theta))
    D, G = squared_differences(X, X), scale_basis(X, basis)
    _, grad = negative_log_posterior(theta, D, G, r, z, rungs, basis)
    step = 1e-6
    numeric = [
        (
            negative_log_posterior(theta + e, D, G, r, z, rungs, basis)[0]
            - negative_log_posterior(theta - e, D, G, r, z, rungs, basis)[0]
        )
        / (2 * step)
        for e in np.eye(len(theta)) * step
    ]
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


def synthetic(rng: np.random.Generator, n_low: int = 40, n_high: int = 6):
    def low(x):
        return np.sin(8 * x[:, 0]) + x[:, 1]

    def high(x):
        return 1.8 * low(x) + 0.3 * (x[:, 0] - 0.5)

    X_low = rng.random((n_low, 2))
    X = np.vstack([X_low, X_low[:n_high]])
    r = np.r_[np.zeros(n_low, int), np.ones(n_high, int)]
    y = np.r_[low(X_low), high(X_low[:n_high])]
    return X, r, y, high


def test_cokriging_learns_the_scale_between_fidelities_and_beats_a_single_fidelity_gp():
    rng = np.random.default_rng(0)
    X, r, y, high = synthetic(rng)
    model = AutoregressiveGP.fit(X, r, y, n_rungs=2)
    assert model.hyper.scales[0, 0] == pytest.approx(1.8, abs=0.15)
    X_test = rng.random((200, 2))
    mean, variance = model.predict(X_test, rung=1)
    error = np.sqrt(np.mean((mean - high(X_test)) ** 2))
    single = AutoregressiveGP.fit(X[r == 1], np.zeros(6, int), y[r == 1], n_rungs=1)
    single_error = np.sqrt(np.mean((single.predict(X_test, 0)[0] - high(X_test)) ** 2))
    assert error < 0.1 * single_error
    # calibrated enough: most errors within three predicted standard deviations
    assert np.mean(np.abs(mean - high(X_test)) <= 3 * np.sqrt(variance) + 1e-3) > 0.8


def test_cheap_observation_reveals_the_target_only_where_it_is_unknown():
    rng = np.random.default_rng(1)
    X, r, y, _ = synthetic(rng)
    model = AutoregressiveGP.fit(X, r, y, n_rungs=2)
    fresh = rng.random((20, 2))
    corr_fresh = model.joint(fresh, rung=0).observation_correlation()
    corr_known = model.joint(X[:40], rung=0).observation_correlation()
    assert corr_fresh.mean() > 3 * corr_known.mean()
    assert np.all((0 <= corr_fresh) & (corr_fresh <= 1))


def test_kriging_believer_keeps_the_mean_and_shrinks_the_variance():
    rng = np.random.default_rng(2)
    X, r, y, _ = synthetic(rng)
    model = AutoregressiveGP.fit(X, r, y, n_rungs=2)
    X_new = rng.random((3, 2))
    believed = model.condition_on_expected(X_new, np.array([0, 1, 1]))
    X_test = np.vstack([X_new, rng.random((10, 2))])
    mean, variance = model.predict(X_test, 1)
    mean_b, variance_b = believed.predict(X_test, 1)
    np.testing.assert_allclose(mean_b, mean, atol=1e-8)
    assert np.all(variance_b <= variance + 1e-12) and variance_b[1] < 0.5 * variance[1]


def test_log_expected_improvement_is_exact_and_finite_in_the_tail():
    from scipy.stats import norm

    mean = np.array([0.0, 0.5, 1.0, 2.0, 0.5, 0.3])
    variance = np.array([1.0, 0.25, 0.04, 0.01, 0.0, 0.0])
    best = 0.4
    sigma = np.sqrt(variance[:4])
    u = (best - mean[:4]) / sigma
    direct = sigma * (norm.pdf(u) + u * norm.cdf(u))
    values = log_expected_improvement(mean, variance, best)
    np.testing.assert_allclose(np.exp(values[:4]), direct, rtol=1e-9)
    assert values[4] == -np.inf  # certain and no better
    assert values[5] == pytest.approx(math.log(0.1))  # certain and better by 0.1
    far = log_expected_improvement(np.array([10.0, 40.0, 4000.0]), np.array([0.01] * 3), 0.0)
    assert np.all(np.isfinite(far)) and far[0] > far[1] > far[2]


# ------------------------------------------------------------------ the proposals
@pytest.mark.parametrize("seed", [1, 4])
def test_design_screens_a_spread_subset_then_confirms_the_best_screened_spread_out(oracle, seed):
    strategy = make_strategy(oracle, seed=seed)
    observations = []
    proposals = []
    for _ in range(8):
        (p,) = strategy.propose(observations, n=1)
        proposals.append(p)
        observations.append(observe(oracle, p.parameters))
    methods = [p.parameters["method"] for p in proposals]
    assert methods == ["chgnet"] * 6 + ["emt"] * 2
    assert all("initial design" in p.reason for p in proposals[:6])
    assert all("nested design" in p.reason for p in proposals[6:])
    screened = [oracle.key(p.parameters) for p in proposals[:6]]
    assert len(set(screened)) == 6
    # the first confirmation where CHGNet screened best; the second among the better half of the
    # screens, the farthest of them from the first
    by_value = sorted(proposals[:6], key=lambda p: oracle.value(p.parameters, "chgnet"))
    first, second = proposals[6:]
    assert oracle.key(first.parameters) == oracle.key(by_value[0].parameters)
    better = by_value[:3]
    assert oracle.key(second.parameters) in {oracle.key(p.parameters) for p in better[1:]}
    X = strategy._features([p.parameters for p in better])
    distances = np.linalg.norm(X[1:] - X[0], axis=1)
    X_second = strategy._features([second.parameters])[0]
    assert np.linalg.norm(X_second - X[0]) == pytest.approx(distances.max())
    # space-filling: the design's closest pair is farther apart than a random subset's
    X = strategy._features([p.parameters for p in proposals[:6]])
    closest = min(np.linalg.norm(a - b) for i, a in enumerate(X) for b in X[i + 1 :])
    assert closest >= 0.5


def test_every_proposal_names_its_fidelity_and_why(oracle):
    run = bench.replay_multifidelity(oracle, budget=120.0, seed=2, refit_every=3)
    log = run["log"]
    assert run["cost_spent"] <= 120.0
    assert {e["method"] for e in log} == {"chgnet", "emt"}
    levels = {"chgnet": 0.05, "emt": 1.0}  # cost relative to EMT's
    for entry in log:
        p = entry["proposal"]
        assert isinstance(p, FidelityProposal)
        assert p.fidelity == entry["method"] == p.parameters["method"]
        assert p.fidelity_level == pytest.approx(levels[entry["method"]])
        assert p.reason and p.strategy == "multifidelity"
        json.dumps(p.model_dump(mode="json"))  # the daemon stores it as the request's provenance
    modelled = [e["proposal"] for e in log if "design" not in e["proposal"].reason]
    assert modelled
    for p in modelled:
        assert p.acquisition_value is not None and p.acquisition_value >= 0
        assert set(p.predicted_mean) == set(p.predicted_std) == {"formation_energy"}
        assert p.predicted_std["formation_energy"] >= 0
        assert "per cost unit" in p.reason and "eV/atom" in p.reason
        if p.parameters["method"] == "chgnet":
            assert p.reason.startswith("MLIP screen with chgnet: emt EI")
        else:
            assert p.reason.startswith("EMT confirm with emt: EI")


def test_fidelities_alternate_sensibly(oracle):
    run = bench.replay_multifidelity(oracle, budget=BUDGET, seed=0, refit_every=3)
    log = run["log"]
    methods = [e["method"] for e in log]
    # design: screens first, then two confirmations; afterwards the model uses both fidelities
    assert methods[:8] == ["chgnet"] * 6 + ["emt"] * 2
    later = methods[8:]
    assert "chgnet" in later and "emt" in later
    # confirmations go where CHGNet has looked first (screening first is twenty times cheaper)
    screened: set[str] = set()
    for entry in log:
        key = oracle.key(entry["parameters"])
        if entry["method"] == "chgnet":
            screened.add(key)
        else:
            assert key in screened, f"EMT on {key} before any screen"
    # far from the extremes of "all screening" and "all confirming"
    emt_cost = 20.0 * methods.count("emt")
    assert 0.25 * run["cost_spent"] <= emt_cost <= 0.9 * run["cost_spent"]
    # the screens are not exhaustive: the model decides that many candidates are not worth a look
    assert methods.count("chgnet") < 0.9 * len(oracle)


def test_pending_requests_are_not_proposed_again(oracle):
    strategy = make_strategy(oracle, seed=4)
    observations = []
    while len(observations) < 14:
        for p in strategy.propose(observations, n=2):
            observations.append(observe(oracle, p.parameters))
    known = {(oracle.key(p), p["method"]) for p, _ in observations}
    (probe,) = strategy.propose(observations, n=1)
    pending = [probe.parameters]
    # a screened point confirmed in flight must not be screened or confirmed again
    confirm = next(p for p, _ in observations if p["method"] == "chgnet")
    pending.append({**confirm, "method": "emt"})
    batch = strategy.propose(observations, pending=pending, n=4)
    assert len(batch) == 4
    keys = [(oracle.key(p.parameters), p.parameters["method"]) for p in batch]
    in_flight = {(oracle.key(p), p["method"]) for p in pending}
    assert len(set(keys)) == 4
    assert not set(keys) & (known | in_flight)
    assert oracle.key(confirm) not in {k for k, _ in keys}


def test_a_batch_from_nothing_holds_the_design_and_waits_for_results(oracle):
    strategy = make_strategy(oracle, seed=6)
    batch = strategy.propose([], n=12)
    methods = [p.parameters["method"] for p in batch]
    assert methods == ["chgnet"] * 6 + ["emt"] * 2  # nothing to model before a result comes back
    assert [oracle.key(p.parameters) for p in batch[6:]] == [oracle.key(p.parameters) for p in batch[:2]]


def test_maximising_the_negated_objective_proposes_the_same_evaluations(oracle):
    space = bench.alloy_space(oracle.elements)
    settings = bench.multifidelity_settings(oracle, BUDGET, seed=7)
    stability = Objective(name="stability", path="formation_energy_per_atom", direction="maximize")
    low = MultiFidelityStrategy(space, [bench.FORMATION_ENERGY], settings)
    high = MultiFidelityStrategy(space, [stability], settings)
    seen_low, seen_high = [], []
    for _ in range(14):
        (a,) = low.propose(seen_low)
        (b,) = high.propose(seen_high)
        assert a.parameters == b.parameters and a.acquisition_value == pytest.approx(b.acquisition_value)
        if a.predicted_mean:
            assert b.predicted_mean["stability"] == pytest.approx(-a.predicted_mean["formation_energy"])
        value = oracle.value(a.parameters, a.parameters["method"])
        seen_low.append((a.parameters, {"formation_energy": value}))
        seen_high.append((b.parameters, {"stability": -value}))


def test_budget_is_never_exceeded_and_a_confirmation_stays_affordable(oracle):
    strategy = make_strategy(oracle, seed=5, budget=75.0)
    observations = []
    spent = 0.0
    while True:
        batch = strategy.propose(observations, n=3)
        if not batch:
            break
        for p in batch:
            method = p.parameters["method"]
            remaining = 75.0 - spent
            if method == "chgnet":
                assert remaining - 1.0 >= 20.0  # the reserve for one EMT run
            spent += 20.0 if method == "emt" else 1.0
            observations.append(observe(oracle, p.parameters))
    assert spent <= 75.0
    assert 75.0 - spent < 20.0  # nothing useful left to buy
    assert strategy.propose(observations, n=1) == []


def test_observations_without_a_known_method_are_refused(oracle):
    strategy = make_strategy(oracle)
    (p,) = strategy.propose([], n=1)
    bare = {k: v for k, v in p.parameters.items() if k != "method"}
    with pytest.raises(ValueError, match=r"observations\[0\]: the fidelity parameter 'method'"):
        strategy.propose([(bare, {"formation_energy": 0.1})])
    with pytest.raises(ValueError, match=r"pending\[0\]\.method"):
        strategy.propose([], pending=[{**bare, "method": "vasp"}])
    with pytest.raises(ValueError, match=r"observations\[0\]: value 'formation_energy' is not finite"):
        strategy.propose([(p.parameters, {"formation_energy": math.nan})])


def test_recommendation_is_the_best_target_fidelity_result(oracle):
    strategy = make_strategy(oracle)
    pool = strategy._build_pool()
    screened = [observe(oracle, {**p, "method": "chgnet"}) for p in pool[:12]]
    confirmed = [observe(oracle, {**p, "method": "emt"}) for p in pool[12:15]]
    # a cheap screen's value is a hint: however good, it is not the campaign's answer
    best_emt = min(confirmed, key=lambda o: o[1]["formation_energy"])[0]
    lucky_screen = (dict(screened[0][0]), {"formation_energy": -10.0})
    assert strategy.recommend([lucky_screen, *screened[1:], *confirmed]) == best_emt
    assert strategy.recommend(screened) is None


# ------------------------------------------- model choice, own noise, measured costs
def test_leave_one_out_density_matches_conditioning_on_the_others():
    rng = np.random.default_rng(3)
    X, r, y, _ = synthetic(rng)
    model = AutoregressiveGP.fit(X, r, y, n_rungs=2)
    expected = 0.0
    for i in np.flatnonzero(r == 1):
        keep = np.arange(len(y)) != i
        # the others, same hyperparameters and standardisation: the density of the left-out value
        other = AutoregressiveGP(X[keep], r[keep], y[keep], 2, model.hyper, model.y_mean, model.y_scale)
        mean, variance = other.predict(X[i : i + 1], 1)
        variance = variance + model.noise_variance(1)
        expected += -0.5 * math.log(2 * math.pi * variance[0]) - 0.5 * (y[i] - mean[0]) ** 2 / variance[0]
    # the closed form works on standardised outputs: densities differ by the Jacobian log(y_scale) per point
    assert model.loo_log_density(1) - 6 * math.log(model.y_scale) == pytest.approx(expected, rel=1e-6)


def test_an_observation_with_its_own_noise_counts_for_less():
    rng = np.random.default_rng(4)
    X, r, y, _ = synthetic(rng)
    y_moved = y.copy()
    y_moved[0] += 2.0  # one cheap observation far off its trend
    noise = np.zeros(len(y))
    noise[0] = 4.0  # ... reported with a variance of 4 (a committee that disagrees)
    plain = AutoregressiveGP.fit(X, r, y_moved, n_rungs=2)
    trusted_less = AutoregressiveGP.fit(X, r, y_moved, n_rungs=2, noise=noise)
    truth = AutoregressiveGP.fit(X, r, y, n_rungs=2).predict(X[:1], 0)[0][0]
    pulled = abs(plain.predict(X[:1], 0)[0][0] - truth)
    assert abs(trusted_less.predict(X[:1], 0)[0][0] - truth) < 0.5 * pulled
    believed = trusted_less.condition_on_expected(X[1:2], np.array([0]))
    assert believed.noise.shape == (len(y) + 1,) and believed.noise[-1] == 0.0
    with pytest.raises(ValueError, match=r"noise: need shape"):
        AutoregressiveGP.fit(X, r, y, n_rungs=2, noise=noise[:3])
    with pytest.raises(ValueError, match="noise: variances must be finite and non-negative"):
        AutoregressiveGP.fit(X, r, y, n_rungs=2, noise=-noise)


def test_the_basis_is_chosen_by_leave_one_out_on_what_was_seen(oracle):
    strategy = make_strategy(oracle, seed=0, scale_basis="auto", refit_every=1)
    pool = strategy._build_pool()
    rng = np.random.default_rng(0)
    picks = [pool[i] for i in rng.choice(len(pool), 30, replace=False)]
    screens = [observe(oracle, {**p, "method": "chgnet"}) for p in picks]
    confirms = [observe(oracle, {**p, "method": "emt"}) for p in picks[:3]]
    strategy.propose(screens + confirms, n=1)
    assert strategy.basis == "constant" and set(strategy.basis_scores) == {"constant"}  # too few to compare
    confirms += [observe(oracle, {**p, "method": "emt"}) for p in picks[3:12]]
    strategy.propose(screens + confirms, n=1)
    assert set(strategy.basis_scores) == {"constant", "linear", "presence"}
    assert strategy.basis == max(strategy.basis_scores, key=strategy.basis_scores.__getitem__)
    fixed = make_strategy(oracle, seed=0, scale_basis="linear")
    fixed.propose(screens + confirms, n=1)
    assert fixed.basis == "linear" and set(fixed.basis_scores) == {"linear"}


def test_measured_costs_are_charged_and_priced_by_their_median(oracle):
    strategy = make_strategy(oracle, budget=100.0, cost_value="cpu_seconds")
    pool = strategy._build_pool()
    screens = [(p, {**v, "cpu_seconds": 0.5}) for p, v in
               (observe(oracle, {**q, "method": "chgnet"}) for q in pool[:6])]
    confirms = [(p, {**v, "cpu_seconds": c}) for (p, v), c in
                zip((observe(oracle, {**q, "method": "emt"}) for q in pool[:2]), (30.0, 50.0))]
    proposals = strategy.propose(screens + confirms, n=10)
    # measured: 3 on screens and 80 on EMT runs; an EMT run is now expected to cost 30 (the median
    # of 30, 50 measured and the nominal 20), a screen 0.5: no EMT run fits in the 17 left, and no
    # screen is worth what it cannot confirm
    assert list(strategy._costs) == [0.5, 30.0]
    assert proposals == []
    # charged at the nominal 20 per EMT run, the same evaluations would have left 57
    nominal = make_strategy(oracle, budget=100.0)
    assert nominal.propose(screens + confirms, n=1)
    cheaper = make_strategy(oracle, budget=100.0, cost_value="cpu_seconds")
    confirms = [(p, {**v, "cpu_seconds": 10.0}) for p, v in confirms]
    proposals = cheaper.propose(screens + confirms, n=30)
    spent = 3 + 20 + sum(0.5 if p.parameters["method"] == "chgnet" else 10.0 for p in proposals)
    assert proposals and spent <= 100.0
    with pytest.raises(ValueError, match=r"observations\[0\]: value 'cpu_seconds' must be finite and non-negative"):
        strategy.propose([(screens[0][0], {**screens[0][1], "cpu_seconds": -1.0})])


@pytest.mark.parametrize("acquisition", ["ei", "entropy"])
def test_botorch_multitask_model_and_entropy_search_propose_within_budget(oracle, acquisition):
    strategy = make_strategy(oracle, seed=1, budget=90.0, model="multitask", acquisition=acquisition, refit_every=4)
    observations: list = []
    proposals = []
    while True:
        batch = strategy.propose(observations, n=1)
        if not batch:
            break
        proposals += batch
        observations.append(observe(oracle, batch[0].parameters))
    methods = [p.parameters["method"] for p in proposals]
    assert 20.0 * methods.count("emt") + methods.count("chgnet") <= 90.0
    modelled = proposals[8:]
    assert modelled and all(p.acquisition_value is not None and p.acquisition_value > 0 for p in modelled)
    if acquisition == "entropy":
        assert all("nats / cost" in p.reason for p in modelled)


def test_settings_refuse_combinations_the_models_cannot_do():
    with pytest.raises(ValidationError, match="acquisition: 'entropy' needs model = 'multitask'"):
        MultiFidelitySettings(acquisition="entropy")
    with pytest.raises(ValidationError, match="noise_value: per-observation noise needs model = 'cokriging'"):
        MultiFidelitySettings(model="multitask", noise_value="variance")


@pytest.mark.parametrize("surrogate", ["cokriging", "multitask"])
def test_both_surrogates_refuse_bad_observations_naming_the_field(surrogate):
    from labweave.optimizer.multitask import MultiTaskSurrogate

    fit = {"cokriging": AutoregressiveGP.fit, "multitask": MultiTaskSurrogate.fit}[surrogate]
    X, rungs, y = np.random.default_rng(0).random((6, 2)), np.array([0, 0, 0, 1, 1, 1]), np.arange(6.0)
    with pytest.raises(ValueError, match=r"X: need an \(n, d\) array"):
        fit(X[:0], rungs[:0], y[:0], 2)
    with pytest.raises(ValueError, match=r"rungs/y: need shape \(6,\)"):
        fit(X, rungs[:5], y, 2)
    with pytest.raises(ValueError, match=r"rungs: values must lie in 0\.\.1"):
        fit(X, rungs + 1, y, 2)
    with pytest.raises(ValueError, match="y: observations must be finite"):
        fit(X, rungs, np.where(y == 2.0, np.nan, y), 2)

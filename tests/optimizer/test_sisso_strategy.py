"""The ``sisso`` strategy: SISSO-ensemble sequential learning over a pool."""

from __future__ import annotations

import numpy as np
import pytest

from labweave.optimizer.campaign import CampaignFileError, parse_campaign
from labweave.optimizer.sisso.features import FeatureSpace, estimate_feature_space
from labweave.optimizer.space import SearchSpace
from labweave.optimizer.strategies import get_strategy
from labweave.optimizer.strategies.sisso import SissoProposal, SissoStrategy, _condition
from labweave.schemas.campaign import Objective

P = 6


def planted(point: dict) -> float:
    return 2.0 * point["x0"] * point["x1"] - 3.0 * point["x2"] / point["x3"]


def make_pool(n: int = 300, seed: int = 1) -> tuple[SearchSpace, list[dict]]:
    rng = np.random.default_rng(seed)
    space = SearchSpace.from_parameters(
        [{"name": f"x{i}", "lower": 0.5, "upper": 2.0, "unit": "angstrom" if i < 4 else None} for i in range(P)]
    )
    points = [{f"x{i}": float(v) for i, v in enumerate(row)} for row in rng.uniform(0.5, 2.0, (n, P))]
    return space, points


def strategy(points: list[dict], space: SearchSpace, **settings) -> SissoStrategy:
    built = get_strategy(
        "sisso",
        {"pool": {"kind": "explicit", "points": points}, "n_models": 10, "seed": 0, **settings},
        space=space,
        objectives=[Objective(name="y", path="y", direction="maximize")],
    )
    assert isinstance(built, SissoStrategy)
    return built


def observe(points: list[dict]) -> list[tuple[dict, dict]]:
    return [(p, {"y": planted(p)}) for p in points]


def test_design_then_model_finds_the_planted_formula_and_a_top_candidate():
    space, points = make_pool()
    s = strategy(points, space, initial_design=8)
    observations: list = []
    for _ in range(8):
        for proposal in s.propose(observations, n=3):
            observations.append((proposal.parameters, {"y": planted(proposal.parameters)}))
    values = sorted((planted(p) for p in points), reverse=True)
    best = max(v["y"] for _, v in observations)
    assert best >= values[2], "a top-3 candidate of 300 within 24 evaluations"
    last = s.propose(observations, n=1)[0]
    assert isinstance(last, SissoProposal)
    lead = last.formulas[0]
    assert set(lead.descriptor.split("; ")) == {"(x1 * x0)", "(x2 / x3)"}
    assert lead.members >= 2 and lead.of == 10
    assert last.predicted_std["y"] > 0 and "y" in last.predicted_mean
    assert "leading formula" in last.reason
    assert last.model_dump(mode="json")["formulas"][0]["formula"].startswith("y = ")


def test_proposals_are_pool_candidates_never_repeating_observed_or_in_flight_ones():
    space, points = make_pool(60)
    s = strategy(points, space, initial_design=6)
    observations = observe(points[:10])
    pending = points[10:14]
    proposals = s.propose(observations, pending=pending, n=5)
    chosen = [p.parameters for p in proposals]
    assert len(chosen) == 5
    assert all(c in points for c in chosen)
    assert not any(c in points[:14] for c in chosen)
    assert len({tuple(sorted(c.items())) for c in chosen}) == 5


def test_pool_exhaustion_gives_fewer_proposals():
    space, points = make_pool(12)
    s = strategy(points, space, initial_design=4)
    assert len(s.propose(observe(points[:10]), n=5)) == 2
    assert s.propose(observe(points), n=3) == []


def test_design_is_space_filling_and_continues_after_a_restart():
    space, points = make_pool(80)
    first = strategy(points, space, initial_design=8).propose([], n=4)
    again = strategy(points, space, initial_design=8).propose([], n=2)
    assert [p.parameters for p in first[:2]] == [p.parameters for p in again]
    rest = strategy(points, space, initial_design=8).propose([], pending=[p.parameters for p in first], n=4)
    assert not {tuple(p.parameters.values()) for p in rest} & {tuple(p.parameters.values()) for p in first}
    assert all("initial design" in p.reason for p in first + rest)


def test_believing_a_candidate_collapses_the_spread_of_what_the_members_see_as_redundant():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 8))
    # candidates 0 and 1 move together across members, candidate 2 independently
    L = np.array([base[0], base[0] * 1.01, base[2]])
    after = _condition(L, L[0], noise=1e-6)
    variance = (after**2).sum(axis=1)
    before = (L**2).sum(axis=1)
    assert variance[0] < 1e-3 * before[0]
    assert variance[1] < 1e-2 * before[1]
    assert variance[2] > 0.3 * before[2]


def test_batches_spread_out_where_the_ensemble_is_unsure():
    space, points = make_pool(200)
    observations = observe(points[:12])
    s = strategy(points, space, acquisition="ucb", ucb_beta=3.0)
    batch = s.propose(observations, n=4)
    # UCB alone would pick the same top-4 of mean + 3 std; believing each pick reshuffles later ones
    s.propose(observations, n=1)
    ensemble = s.ensemble_
    assert ensemble is not None
    mean, std = ensemble.predict(s.features, s.featurizer.names)
    free = np.ones(len(points), dtype=bool)
    free[:12] = False
    naive = set(np.argsort(np.where(free, mean + 3.0 * std, -np.inf))[-4:])
    chosen = {points.index(p.parameters) for p in batch}
    assert chosen != naive


def test_the_next_pick_of_a_batch_is_the_pick_with_the_first_in_flight():
    space, points = make_pool(200)
    observations = observe(points[:12])
    batch = strategy(points, space).propose(observations, n=2)
    alone = strategy(points, space).propose(observations, pending=[batch[0].parameters], n=1)
    assert alone[0].parameters == batch[1].parameters
    assert "1 in flight" in alone[0].reason


def test_unevaluable_candidates_are_reported_not_scored():
    space, points = make_pool(40)
    # x5 = 1 everywhere but for three candidates at the bound: log(x5 - 1) etc. are not used, so make the
    # descriptor undefined by division: a candidate whose x3 is 0 cannot be evaluated by x2 / x3 models.
    space = SearchSpace.from_parameters(
        [{"name": f"x{i}", "lower": 0.0 if i == 3 else 0.5, "upper": 2.0, "unit": "angstrom" if i < 4 else None}
         for i in range(P)]
    )
    broken = [dict(points[k], x3=0.0) for k in range(3)]
    pool = broken + points[3:]
    s = strategy(pool, space, feature_dropout=0.0)
    proposals = s.propose(observe(points[10:30]), n=2)
    assert sorted(s.unevaluable_ + s.partly_evaluable_) == [0, 1, 2]
    assert all(isinstance(p, SissoProposal) for p in proposals)
    first = proposals[0]
    assert isinstance(first, SissoProposal)
    assert (first.unevaluable, first.partly_evaluable) == (len(s.unevaluable_), len(s.partly_evaluable_))
    assert [e["x3"] for e in first.unevaluable_examples] == [0.0] * len(s.unevaluable_)
    assert not any(pool.index(p.parameters) in s.unevaluable_ for p in proposals)
    assert all(np.isfinite(p.predicted_mean["y"]) and np.isfinite(p.predicted_std["y"]) for p in proposals)


def test_a_candidate_no_member_can_evaluate_is_left_out_and_reported():
    space = SearchSpace.from_parameters(
        [{"name": f"x{i}", "lower": 0.0 if i == 3 else 0.5, "upper": 2.0} for i in range(P)]
    )
    _, points = make_pool(40)
    # every member keeps x2 and x3 (no dropout, no alternative): the planted x2 / x3 term is everywhere
    pool = [dict(points[0], x3=0.0)] + points[1:]
    s = strategy(pool, space, feature_dropout=0.0, dimension=1, operators=["div"])
    observations = [(p, {"y": p["x2"] / p["x3"]}) for p in points[10:30]]
    proposals = s.propose(observations, n=3)
    assert s.unevaluable_ == [0]
    assert proposals[0].model_dump()["unevaluable_examples"] == [pool[0]]
    assert pool[0] not in [p.parameters for p in proposals]


def test_a_feature_space_too_big_for_memory_is_refused_up_front_with_its_size():
    space, points = make_pool(50)
    with pytest.raises(ValueError, match=r"max_rung: .* about [\d,]+ MB") as info:
        strategy(points, space, max_rung=3, max_feature_memory_mb=1.0, operators=["add", "sub", "mult", "div", "sq"])
    assert "lower the rung" in str(info.value)
    with pytest.raises(ValueError, match="features to screen"):
        strategy(points, space, max_rung=3, max_screened_features=10**6)


def test_estimate_bounds_the_real_feature_space():
    rng = np.random.default_rng(0)
    data = rng.uniform(0.5, 2.0, (20, 4))
    ops = ("add", "sub", "mult", "div", "sq", "inv")
    space = FeatureSpace(data, ["a", "b", "c", "d"], max_rung=2, operators=ops)
    estimate = estimate_feature_space(4, ops, 2, 20)
    real = sum(block.values.shape[0] for block in space.candidate_blocks())
    assert len(space.stored) <= sum(estimate.per_rung[:2])
    assert real <= estimate.screened
    assert real > estimate.screened / 3  # a bound, not a guess off by orders of magnitude


def test_a_categorical_parameter_is_refused_as_a_numeric_feature():
    space = SearchSpace.from_parameters(
        [{"name": "A", "kind": "categorical", "choices": ["Sr", "Ba"]}, {"name": "x", "lower": 0, "upper": 1}]
    )
    with pytest.raises(ValueError, match="features.parameters"):
        get_strategy(
            "sisso",
            {"pool": {"kind": "explicit", "points": [{"A": "Sr", "x": 0.5}]}, "features": {"kind": "parameters", "parameters": ["A"]}},
            space=space,
            objectives=[Objective(name="y", path="y", direction="maximize")],
        )


def test_settings_live_in_the_campaign_file_and_bad_ones_name_the_field():
    text = """
name = "planted"
batch_size = 2
initial_design = 6
budget = 30
[request]
quantity = "q"
methods = ["m"]
[request.parameters]
x0 = "{x0}"
x1 = "{x1}"
[[space.parameters]]
name = "x0"
lower = 0.5
upper = 2.0
[[space.parameters]]
name = "x1"
lower = 0.5
upper = 2.0
[[objectives]]
name = "y"
path = "y"
direction = "maximize"
[strategy]
name = "sisso"
[strategy.settings]
acquisition = "ucb"
max_rung = 2
dimension = 1
operators = ["add", "mult"]
[strategy.settings.pool]
kind = "sample"
size = 64
"""
    spec = parse_campaign(text)
    assert spec.strategy.settings["acquisition"] == "ucb"
    assert spec.strategy.settings["features"] == {"kind": "parameters", "parameters": None, "units": {}}
    with pytest.raises(CampaignFileError, match=r"strategy.settings.acquisition"):
        parse_campaign(text.replace('acquisition = "ucb"', 'acquisition = "pi"'))
    with pytest.raises(CampaignFileError, match=r"strategy.settings.operators: .*unknown operator 'tan'"):
        parse_campaign(text.replace('["add", "mult"]', '["add", "tan"]'))


def test_several_objectives_are_refused():
    space, points = make_pool(20)
    with pytest.raises(ValueError, match="objectives: the sisso strategy optimises one objective"):
        get_strategy(
            "sisso",
            {"pool": {"kind": "explicit", "points": points}},
            space=space,
            objectives=[Objective(name="y", path="y"), Objective(name="z", path="z")],
        )


def test_the_perovskite_campaign_file_builds_requests_the_mlip_tenant_accepts():
    from labweave.optimizer.campaign import EXAMPLES, Campaign
    from labweave.schemas.atomistic import BulkPropertiesParameters
    from labweave.services.demo.campaigns import DEFAULT_CAMPAIGNS, demo_campaign

    campaign = Campaign.from_file(EXAMPLES / "perovskite.toml")
    s = campaign.make_strategy()
    assert isinstance(s, SissoStrategy)
    assert 150 <= len(s.candidates) <= 400
    assert s.featurizer.names[:2] == ["r_A", "r_B"] and np.all(np.isfinite(s.features))
    t = s.features[:, s.featurizer.names.index("t")]
    assert 0.82 <= t.min() and t.max() <= 1.10
    first = s.propose([], n=2)
    request = campaign.build_request(first[0].parameters)
    params = BulkPropertiesParameters.model_validate(request["parameters"]["chgnet"])
    assert params.perovskite is not None and params.perovskite.a_site == first[0].parameters["A"]
    pair = demo_campaign("perovskite")
    assert "perovskite" not in DEFAULT_CAMPAIGNS
    assert pair.baseline.spec.strategy.name == "random"
    assert pair.baseline.spec.strategy.settings["pool"] == pair.optimised.spec.strategy.settings["pool"]


def test_a_random_design_starts_from_the_candidates_bayesian_draws():
    space, points = make_pool(50)
    sisso = strategy(points, space, design="random", seed=4, initial_design=6).propose([], n=4)
    bayes = get_strategy("bayesian", {"pool": {"kind": "explicit", "points": points}, "seed": 4, "initial_design": 6},
                         space=space, objectives=[Objective(name="y", path="y", direction="maximize")]).propose([], n=4)
    assert [p.parameters for p in sisso] == [min(points, key=lambda q: max(abs(q[k] - b.parameters[k]) for k in q))
                                             for b in bayes]

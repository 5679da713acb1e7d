"""Campaign analytics: observations, progress in the budget's unit, best so far, Pareto fronts,
hypervolumes and the model's calibration, read from a campaign's requests and results."""

from __future__ import annotations

import pytest

from labweave.optimizer import analytics
from labweave.optimizer.analytics import CampaignTerms
from labweave.optimizer.campaign import EXAMPLES, load_campaign
from labweave.schemas.campaign import CampaignSpec
from tests.campaign_records import request, result, run


def spec(**changes) -> CampaignSpec:
    return CampaignSpec.model_validate({
        "name": "c", "budget": 6, "initial_design": 1,
        "request": {"quantity": "q", "methods": ["m"], "parameters": {"m": {"x": "{x}"}}},
        "space": {"parameters": [{"name": "x", "lower": 0.0, "upper": 1.0}]},
        "objectives": [{"name": "life", "path": "cells.*.life", "aggregate": "median", "direction": "maximize"}],
    } | changes)


TWO = [{"name": "roughness", "path": "r", "direction": "minimize", "threshold": 1.0},
       {"name": "oscillations", "path": "o", "direction": "maximize", "threshold": 0.0}]
LADDER = {"name": "random", "settings": {"budget": 60.0, "fidelities": [{"method": "cheap", "cost": 1.0},
                                                                        {"method": "dear", "cost": 20.0}]}}


def cells(*lives: float) -> dict:
    return {"cells": [{"life": v} for v in lives]}


# ------------------------------------------------------------------ terms
def test_terms_count_a_multi_fidelity_campaign_in_cost_and_others_in_experiments():
    materials = CampaignTerms.of(load_campaign(EXAMPLES / "materials.toml"))
    assert (materials.unit, materials.budget, materials.target) == ("cost", 300.0, "emt")
    assert materials.cost("chgnet") == 1.0 and materials.cost(1.0) == 20.0 and materials.cost(0.05) == 1.0
    assert materials.cost(None) == 0.0 and materials.cost("dft") == 0.0
    electrolyte = CampaignTerms.of(load_campaign(EXAMPLES / "electrolyte.toml"))
    assert (electrolyte.unit, electrolyte.budget, electrolyte.target) == ("experiments", 40, None)
    assert electrolyte.objectives[0].aggregate == "median"  # the campaign's own objective, not a copy


def test_terms_read_the_well_formed_parts_of_a_stored_spec():
    whole = spec().model_dump(mode="json")
    assert CampaignTerms.read(whole) == CampaignTerms.of(spec())
    partial = CampaignTerms.read({"objectives": [TWO[0], "nonsense", {"name": "no path"}], "budget": 8,
                                  "strategy": {"settings": {"budget": 5, "fidelities": [{"method": "a"}]}}})
    assert [o.name for o in partial.objectives] == ["roughness"] and partial.request_budget == 8
    assert partial.ladder is None and partial.unit == "experiments"  # a ladder without costs is none
    odd = CampaignTerms.read({"objectives": "volume", "budget": "many"})
    assert odd.objectives == () and odd.budget is None


# ------------------------------------------------------------------ observations
def test_observations_read_aggregates_in_the_order_results_arrived():
    terms = CampaignTerms.of(spec(outcome_constraints=[
        {"name": "spread", "path": "cells.*.life", "aggregate": "max", "relation": "<=", "bound": 150.0}]))
    requests = [request("a", parameters={"x": 0.1}, second=0), request("b", parameters={"x": 0.2}, second=1),
                request("c", second=2), request("d", status="failed", second=3),
                request("e", status="pending", second=4)]
    results = [result("b", cells(100, 120, 300), second=5),  # b's result came first
               result("a", cells(90, 110, 100), second=6),
               result("c", {"cells": []}, second=7),
               result("c", cells(1, 2, 3), second=8, status="deleted")]
    obs = analytics.observations(terms, requests, results)
    assert [(o.n, o.request_uuid) for o in obs] == [(1, "b"), (2, "a"), (3, "c")]
    assert obs[0].values == {"life": 120.0, "spread": 300.0} and not obs[0].feasible  # the median; max too high
    assert obs[1].values == {"life": 100.0, "spread": 110.0} and obs[1].feasible and obs[1].counts
    assert obs[1].parameters == {"x": 0.1} and obs[1].complete
    assert not obs[2].complete and "none of the 0 entries" in obs[2].problems["life"]


def test_an_amended_result_stands_in_only_where_no_original_is_left():
    terms = CampaignTerms.of(spec())
    requests = [request("a"), request("b", second=1)]
    results = [result("a", cells(5), second=1), result("a", cells(7), second=2, status="amended"),
               result("b", cells(9), second=3, status="amended")]
    assert [o.values["life"] for o in analytics.observations(terms, requests, results)] == [5.0, 9.0]


# ------------------------------------------------------------------ progress
def test_progress_counts_experiments_resolved_and_in_flight():
    terms = CampaignTerms.of(spec())
    requests = [request("a"), request("b", status="reserved"), request("c", status="proposed"),
                request("d", status="failed"), request("e", status="retracted"), request("f")]
    p = analytics.progress(terms, "running", requests)
    assert (p.unit, p.done, p.in_flight, p.total, p.requests) == ("experiments", 2, 2, 6, 4)
    assert p.fraction == pytest.approx(1 / 3) and p.describe() == "2 / 6 experiments" and not p.finished
    assert analytics.progress(terms, "finished", requests).finished


def test_progress_of_a_cost_budget_charges_each_request_its_fidelity():
    terms = CampaignTerms.of(spec(strategy=LADDER, request={
        "quantity": "q", "methods": ["cheap", "dear"], "parameters": {"cheap": {}, "dear": {}}}))
    requests = [request("a", method="cheap"), request("b", method="dear"),
                request("c", methods=["cheap", "dear"], provenance={"fidelity": "dear"}, status="pending"),
                request("d", method="cheap", status="failed")]
    p = analytics.progress(terms, "finished", requests)
    assert (p.unit, p.done, p.in_flight, p.total) == ("cost", 21.0, 20.0, 60.0)
    assert p.describe() == "21 / 60 cost" and p.finished and p.requests == 3


# ------------------------------------------------------------------ fronts and hypervolumes
def test_pareto_mask_keeps_the_non_dominated_points():
    # capacity (maximize) and cost (minimize)
    points = [(1.0, 1.0), (2.0, 2.0), (2.0, 3.0), (0.5, 1.0), (3.0, 2.5), (3.0, 2.5)]
    assert analytics.pareto_mask(points, ["maximize", "minimize"]) == [True, True, False, False, True, True]
    assert analytics.pareto_mask(points, ["maximize", "minimize"], deduplicate=True) == [
        True, True, False, False, True, False]
    assert analytics.pareto_mask(points, ["maximize", "maximize"]) == [False, False, True, False, True, True]
    assert analytics.pareto_mask([], ["maximize", "maximize"]) == []
    with pytest.raises(ValueError, match=r"points\[1\]"):
        analytics.pareto_mask([(1.0, 2.0), (1.0,)], ["maximize", "maximize"])
    with pytest.raises(ValueError, match=r"directions\[1\]"):
        analytics.pareto_mask(points, ["maximize", "best"])


def two_objective_run(measured, outcome_constraints=()):
    terms = CampaignTerms.of(spec(objectives=TWO, outcome_constraints=list(outcome_constraints)))
    requests, results = run([("m", {"r": r, "o": o, "k": k}, {}) for r, o, k in measured])
    return terms, analytics.observations(terms, requests, results)


def test_pareto_front_and_hypervolume_of_two_objectives():
    limit = {"name": "k", "path": "k", "relation": "<=", "bound": 1.0}
    terms, obs = two_objective_run([(0.5, 2, 0), (0.2, 1, 0), (0.6, 1, 0), (0.1, 5, 2), (0.2, 1, 0)], [limit])
    front = analytics.pareto_front(obs, terms.objectives)
    assert [(o.values["roughness"], o.values["oscillations"]) for o in front] == [(0.2, 1), (0.5, 2)]
    reference = analytics.reference_point(terms.objectives, obs)
    assert reference == {"roughness": 1.0, "oscillations": 0.0}
    # dominated area: (1 - 0.2) * 1 + (1 - 0.5) * (2 - 1); the infeasible (0.1, 5) does not count
    assert analytics.hypervolume(obs, terms.objectives, reference) == pytest.approx(0.8 + 0.5)
    outside, far = two_objective_run([(1.5, 3, 0)])
    assert analytics.hypervolume(far, outside.objectives, reference) == 0.0  # outside the reference box
    curve = analytics.progress_curve(terms, obs)
    assert curve.x == [1, 2, 3, 4, 5] and curve.y == pytest.approx([1.0, 1.3, 1.3, 1.3, 1.3])
    assert curve.y_label == "hypervolume (roughness x oscillations)" and len(curve.points) == 5


def test_hypervolume_of_three_objectives_and_the_worst_value_as_reference():
    terms = CampaignTerms.of(spec(objectives=[{"name": n, "path": n} for n in "abc"]))
    requests, results = run([("m", {"a": 1, "b": 1, "c": 1}, {}), ("m", {"a": 2, "b": 1, "c": 0.5}, {}),
                             ("m", {"a": 0, "b": 0, "c": 0}, {})])
    obs = analytics.observations(terms, requests, results)
    reference = analytics.reference_point(terms.objectives, obs)
    assert reference == {"a": 0, "b": 0, "c": 0}
    # the unit cube and the box 2 x 1 x 0.5 overlap in 1 x 1 x 0.5
    assert analytics.hypervolume(obs, terms.objectives, reference) == pytest.approx(1 + 1 - 0.5)


# ------------------------------------------------------------------ best so far
def test_best_so_far_counts_target_fidelity_results_against_experiments_or_cost():
    terms = CampaignTerms.of(spec(strategy=LADDER, objectives=[{"name": "e", "path": "e", "direction": "minimize"}]))
    measured = [("cheap", -0.30), ("cheap", -0.10), ("dear", -0.05), ("cheap", -0.40), ("dear", -0.12)]
    requests, results = run([(m, {"e": e}, {}) for m, e in measured])
    obs = analytics.observations(terms, requests, results)
    by_cost = analytics.best_so_far(terms, obs)
    assert by_cost.x == [1.0, 2.0, 22.0, 23.0, 43.0] and by_cost.x_label == "cost spent"
    assert by_cost.y == [None, None, -0.05, -0.05, -0.12]  # the screens do not count as found
    assert by_cost.y_label == "best e (dear)" and by_cost.steps() == [(22.0, -0.05), (23.0, -0.05), (43.0, -0.12)]
    by_experiment = analytics.best_so_far(terms, obs, by="experiments")
    assert by_experiment.x == [1, 2, 3, 4, 5] and by_experiment.y == by_cost.y
    assert analytics.best(obs, terms.objectives[0]).request_uuid == "r4"
    maximised = CampaignTerms.of(spec())
    requests, results = run([("m", cells(v), {}) for v in (2.0, 2.6, 2.2, 3.1, 1.0)])
    curve = analytics.best_so_far(maximised, analytics.observations(maximised, requests, results))
    assert curve.y == [2.0, 2.6, 2.6, 3.1, 3.1] and curve.x_label == "experiments"


# ------------------------------------------------------------------ calibration
def test_predictions_against_measurements_and_their_calibration():
    terms = CampaignTerms.of(spec(objectives=TWO))
    guess = {"predicted_mean": {"roughness": 0.75}, "predicted_std": {"roughness": -0.1}}  # a σ's size counts
    requests, results = run([("m", {"r": 0.9, "o": 1}, guess), ("m", {"r": 0.5, "o": 2}, {}),
                             ("m", {"r": 0.2, "o": 1}, {"predicted_mean": {"roughness": 0.6},
                                                        "predicted_std": {"roughness": 0.1}})])
    requests.append(request("later", status="pending", provenance=guess))
    preds = analytics.predictions(terms, analytics.observations(terms, requests, results))
    assert list(preds) == ["roughness"]  # oscillations were not predicted
    first, second = preds["roughness"]
    assert (first.mean, first.std, first.measured, first.request_uuid) == (0.75, 0.1, 0.9, "r0")
    assert first.z == pytest.approx(1.5)
    check = analytics.calibration(preds["roughness"])
    assert check.n == 2 and check.rmse == pytest.approx(((0.15**2 + 0.4**2) / 2) ** 0.5)
    assert check.within_2_sigma == 0.5  # 0.15 <= 0.2; 0.4 > 0.2
    assert analytics.calibration([]) is None
    assert analytics.awaiting_measurement(terms, requests) == 1


def test_formulas_a_strategy_reports_become_lines():
    assert analytics.formula_lines(None) == [] and analytics.formula_lines("x**2") == ["x**2"]
    assert analytics.formula_lines({"f1": "a*b"}) == ["f1: a*b"]
    assert analytics.formula_lines([{"formula": "0.8*v", "rmse": 0.123456}, "y", {"odd": 1}]) == [
        "0.8*v  (rmse 0.1235)", "y", '{"odd": 1}']

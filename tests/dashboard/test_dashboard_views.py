"""What the dashboard computes for its pages: best so far, Pareto fronts, filters, readable limits."""

from __future__ import annotations

import json

import pytest
from starlette.datastructures import QueryParams

from labweave.services.server.dashboard import campaign_view, text, views
from labweave.services.server.errors import Invalid
from tests.conftest import shared_path


def test_best_so_far_follows_the_direction():
    values = [2.0, 2.6, 2.2, 3.1, 1.0]
    assert campaign_view.best_so_far(values, "maximize") == [2.0, 2.6, 2.6, 3.1, 3.1]
    assert campaign_view.best_so_far(values, "minimize") == [2.0, 2.0, 2.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="direction"):
        campaign_view.best_so_far(values, "up")


def test_pareto_mask_keeps_the_non_dominated_points():
    # capacity (maximize) and cost (minimize)
    points = [(1.0, 1.0), (2.0, 2.0), (2.0, 3.0), (0.5, 1.0), (3.0, 2.5), (3.0, 2.5)]
    assert campaign_view.pareto_mask(points, ["maximize", "minimize"]) == [True, True, False, False, True, True]
    assert campaign_view.pareto_mask(points, ["maximize", "maximize"]) == [False, False, True, False, True, True]
    with pytest.raises(ValueError, match=r"points\[1\]"):
        campaign_view.pareto_mask([(1.0, 2.0), (1.0,)], ["maximize", "maximize"])
    with pytest.raises(ValueError, match=r"directions\[1\]"):
        campaign_view.pareto_mask(points, ["maximize", "best"])


def test_prediction_check_reports_rmse_and_two_sigma_coverage():
    from labweave.services.server.dashboard.charts import ErrorPoint

    check = campaign_view.prediction_check([ErrorPoint(1.0, 1.3, 0.2), ErrorPoint(2.0, 2.0, 0.1),
                                            ErrorPoint(3.0, 3.4, 0.1)])
    assert check.n == 3
    assert check.rmse == pytest.approx(((0.09 + 0.0 + 0.16) / 3) ** 0.5)
    assert check.coverage == pytest.approx(2 / 3)  # 0.3 ≤ 0.4 and 0 ≤ 0.2 are inside; 0.4 > 0.2 is not
    assert campaign_view.prediction_check([]) is None


def test_history_falls_back_to_results_and_skips_malformed_state():
    objectives = campaign_view.objectives_of({"objectives": [{"name": "eol", "path": "x", "direction": "minimize"},
                                                             "nonsense"]})
    assert objectives == [campaign_view.Objective("eol", "x", "minimize")]
    obs = [campaign_view.Observation(1, "a", {"eol": 5.0}), campaign_view.Observation(2, "b", {}),
           campaign_view.Observation(3, "c", {"eol": 3.0})]
    values, bests = campaign_view.history_points({}, obs, objectives)
    assert values == [(1.0, 5.0), (3.0, 3.0)] and bests == [(1.0, 5.0), (3.0, 3.0)]
    state = {"history": [{"n": 1, "value": 2.0}, "junk", {"n": 2, "value": "NaN"}, {"n": 3, "value": 1.0}]}
    values, bests = campaign_view.history_points(state, obs, objectives)
    assert values == [(1.0, 2.0), (3.0, 1.0)] and bests == [(1.0, 2.0), (3.0, 1.0)]


def test_pareto_points_prefer_the_daemons_and_fall_back_to_results():
    a = campaign_view.Objective("capacity", "c", "maximize")
    b = campaign_view.Objective("cost", "k", "minimize")
    obs = [campaign_view.Observation(1, "r1", {"capacity": 1.0, "cost": 2.0}),
           campaign_view.Observation(2, "r2", {"capacity": 3.0})]
    points, labels = campaign_view.pareto_points({}, obs, a, b)
    assert points == [(1.0, 2.0)] and labels == ["experiment 1 (request r1)"]
    state = {"points": [{"capacity": 2.0, "cost": 1.0}, "junk", {"capacity": 4.0, "cost": None},
                        {"capacity": 5.0, "cost": 3.0}]}
    points, labels = campaign_view.pareto_points(state, obs, a, b)
    assert points == [(2.0, 1.0), (5.0, 3.0)] and labels == ["experiment 1", "experiment 4"]


def test_queue_filter_reads_the_query_string_and_names_a_bad_status():
    f = views.QueueFilter.from_query(QueryParams("status=active&quantity=electrolyte&q=%20pump%20"))
    assert f.statuses == ["proposed", "reserved", "pending"] and f.quantity == "electrolyte" and f.q == "pump"
    assert f.status_choice == "active" and f.query() == {"status": "active", "quantity": "electrolyte", "q": "pump"}
    assert views.QueueFilter.from_query(QueryParams("status=failed&status=pending")).statuses == ["pending", "failed"]
    assert views.QueueFilter.from_query(QueryParams("")).status_choice == "all"
    with pytest.raises(Invalid, match="status: unknown status 'done'"):
        views.QueueFilter.from_query(QueryParams("status=done"))


def test_limitations_read_as_text():
    asab = json.loads(shared_path("finales2", "examples", "tenants", "conductivity", "ASAB.json").read_text())
    conductivity = asab["limitations"][0]["limitations"]
    assert text.limits(conductivity) == (
        "formulation: {C1COC(=O)O1 0–0.542 molPerMol; [Li+].F[P-](F)(F)(F)(F)F 0–0.153 molPerMol; "
        "CCOC(=O)OC 0.35–1 molPerMol}; temperature: 301.15")
    assert text.limits([]) == "any"
    assert text.limits({"rate": {"min": 1, "max": 10, "step": 0.5}, "mode": ["CC", "CCCV"]}) == \
        "rate: 1–10 step 0.5; mode: CC | CCCV"
    assert text.limits({"anyOf": [{"t": {"max": 5}}, {"t": {"min": 9}}]}) == "(t: −∞–5) or (t: 9–∞)"


def test_predictions_read_as_text_per_objective():
    assert text.prediction(3.25, 0.4) == "3.25 ± 0.4"
    assert text.prediction({"capacity": 3.25, "cost": 2.0}, {"capacity": -0.4}) == "capacity 3.25 ± 0.4, cost 2"
    assert text.prediction(None) == text.prediction({}) == text.prediction("high") == "–"


def test_durations_and_numbers_read_as_text():
    assert [text.duration(s) for s in (4.4, 60, 195, 7500, 93600)] == ["4 s", "1 min", "3 min 15 s", "2 h 5 min",
                                                                       "1 d 2 h"]
    assert text.ago(100.0, now=130.0) == "30 s ago" and text.ago(None) == "never"
    assert text.ago(200.0, now=130.0) == "in 1 min 10 s"
    assert text.number(3.14159) == "3.142" and text.number(None) == "–" and text.number(True) == "yes"
    assert text.numbers_summary({"run_info": {"id": "x"}, "capacity": 1.234567, "cycles": [{"ce": 0.99}]}) == \
        "capacity = 1.235, cycles.ce = 0.99"

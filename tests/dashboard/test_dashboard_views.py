"""What the dashboard computes for its pages: filters, readable limits (a campaign's analytics are
labweave.optimizer.analytics', tested with it)."""

from __future__ import annotations

import json

import pytest
from starlette.datastructures import QueryParams

from labweave.services.server.dashboard import text, views
from labweave.services.server.errors import Invalid
from tests.conftest import shared_path


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

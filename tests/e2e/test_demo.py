"""``labweave demo``: demo-sized campaigns, the report's arithmetic, and a short run of the whole lab."""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from labweave.optimizer import analytics
from labweave.optimizer.campaign import Campaign
from labweave.schemas.campaign import CampaignSpec
from labweave.services.demo import analysis
from labweave.services.demo.campaigns import (
    BASELINE_SUFFIX,
    RECIPES,
    FAST_ACQUISITION,
    CampaignUnavailable,
    demo_campaign,
)
from labweave.services.demo.runs import CampaignRun
from labweave.services.export.files import read_frame
from labweave.services.demo.tenants import DEMO_TENANTS, unavailable
from tests.campaign_records import request, run

DEMO_PACKAGE = Path(__file__).resolve().parents[2] / "services" / "demo"

PNG = b"\x89PNG\r\n\x1a\n"


def two_objective_campaign() -> Campaign:
    return Campaign(CampaignSpec.model_validate({
        "name": "film", "budget": 4, "initial_design": 1,
        "request": {"quantity": "thin_film", "methods": ["pld_growth"], "parameters": {"pld_growth": {"x": "{x}"}}},
        "space": {"parameters": [{"name": "x", "lower": 0.0, "upper": 1.0}]},
        "objectives": [{"name": "roughness", "path": "r", "direction": "minimize", "threshold": 1.0},
                       {"name": "oscillations", "path": "o", "direction": "maximize", "threshold": 0.0}],
    }))


def campaign_run(campaign: Campaign, measured: list[tuple[str, dict, dict]], **extra) -> CampaignRun:
    """A finished run of ``campaign``: one resolved request per ``(method, result data, provenance)``."""
    requests, results = run(measured)
    return CampaignRun(campaign, "optimised", {"status": "finished", "state": {}}, requests, results, "done",
                       **extra)


# ---------------------------------------------------------------- demo-sized campaigns
def test_pld_demo_copy_is_small_fixed_and_paired_with_random_search():
    pair = demo_campaign("pld", budget=6, seed=5)
    spec, base = pair.optimised.spec, pair.baseline.spec
    assert spec.budget == base.budget == 6
    assert spec.initial_design == 2 and not spec.requires_approval
    assert spec.stopping.no_improvement_in is None and not spec.stopping.stop_on_targets
    names = {p.name for p in spec.space.parameters}
    assert "pulses" not in names and "substrate" not in names  # fixed for the demo
    request = pair.optimised.build_request({"laser_fluence": 1.5, "substrate_temperature": 1100.0,
                                            "oxygen_pressure": 0.1, "repetition_rate": 2.0})
    assert request["parameters"]["pld_growth"]["pulses"] == 200
    assert request["parameters"]["pld_growth"]["substrate"] == "SrTiO3"
    assert spec.strategy.name == "bayesian" and spec.strategy.settings["seed"] == 5
    assert spec.strategy.settings["num_restarts"] == FAST_ACQUISITION["num_restarts"]  # the demo's search
    assert spec.strategy.settings["multi_objective"] == "nehvi"  # from the campaign file
    assert base.name == spec.name + BASELINE_SUFFIX and base.strategy.name == "random"
    assert base.strategy.settings["seed"] == 5 and base.space == spec.space and base.request == spec.request
    assert pair.optimised.make_strategy().propose([], [], 2)  # the strategies build and propose


def test_materials_demo_computes_small_cells_and_its_baseline_draws_from_the_same_pool():
    pair = demo_campaign("materials", seed=3)
    spec, base = pair.optimised.spec, pair.baseline.spec
    for method in ("chgnet", "emt"):  # merged into the file's template: the composition placeholders stay
        alloy = spec.request.parameters[method]["alloy"]
        assert alloy["supercell"] == 1 and alloy["composition"]["Cu"] == "{x_Cu}"
        assert spec.request.parameters[method]["fmax"] == 0.1
    assert spec.strategy.settings["budget"] == 10 * 20.0  # ten EMT runs' worth of cost
    assert spec.batch_size == base.batch_size == 1  # each choice sees every result before it
    assert base.strategy.name == "random" and base.request.methods == ["emt"] and base.budget == 10
    assert base.strategy.settings["pool"] == spec.strategy.settings["pool"]
    candidates = pair.optimised.make_strategy().pool
    drawn = [p.parameters for p in pair.baseline.make_strategy().propose([], n=10)]
    assert len({str(p) for p in drawn}) == 10
    assert all(p in candidates for p in drawn)  # binaries and ternaries on quarters: they fit 4-atom cells
    request = pair.baseline.build_request(drawn[0])
    assert request["methods"] == ["emt"] and request["parameters"]["emt"]["alloy"]["supercell"] == 1


def test_demo_campaign_refuses_what_cannot_run():
    with pytest.raises(KeyError, match="campaigns: unknown campaign 'nope'"):
        demo_campaign("nope")
    with pytest.raises(ValueError, match="budget"):
        demo_campaign("pld", budget=0)
    with pytest.raises(CampaignUnavailable, match="pld: no PLD here"):
        demo_campaign("pld", available=lambda tenant: "no PLD here")
    assert unavailable("pld-chamber") is None
    assert "no demo tenant" in unavailable("coffee-machine")
    assert all(unavailable(name) is None for name in DEMO_TENANTS)


# ---------------------------------------------------------------- the report's arithmetic
def test_traces_and_scores_read_runs_through_the_analytics():
    campaign = two_objective_campaign()
    values = [(0.5, 2), (0.2, 1), (0.9, 0)]
    film = campaign_run(campaign, [("pld_growth", {"r": r, "o": o}, {"parameters": {"x": i / 3}})
                                   for i, (r, o) in enumerate(values)])
    film.requests.append(request("bad", status="failed", second=9))
    trace = analysis.trace(film)
    assert trace.label == "bayesian" and trace.curve.x == [1, 2, 3]
    assert trace.curve.y == pytest.approx([1.0, 1.3, 1.3])  # (1 - 0.5) * 2, then (0.5 - 0.2) * 1 more
    score = analysis.score(film)
    assert score.experiments == 3 and score.failed == 1 and score.front == 2
    assert score.hypervolume == pytest.approx(1.3) and score.best == 0.2 and score.best_parameters == {"x": 1 / 3}
    compared = analysis.compare(film, film)
    assert compared.reference == {"roughness": 1.0, "oscillations": 0.0}
    assert compared.optimised.hypervolume == compared.baseline.hypervolume == pytest.approx(1.3)


def single_objective_run(name: str, lives: list[float], replicates: list[float]) -> CampaignRun:
    campaign = Campaign(CampaignSpec.model_validate({
        "name": name, "budget": 10, "initial_design": 1,
        "request": {"quantity": "degradationEOL", "methods": ["degradation_workflow"],
                    "parameters": {"degradation_workflow": {"x": "{x}"}}},
        "space": {"parameters": [{"name": "x", "lower": 0.0, "upper": 1.0}]},
        "objectives": [{"name": "cycle_life", "path": "life", "direction": "maximize"}],
        "strategy": {"name": "random"},
    }))
    return campaign_run(campaign, [("degradation_workflow", {"life": v}, {"parameters": {"x": i / 10}})
                                   for i, v in enumerate(lives)],
                        replicated={"x": 0.2}, replicates=[{"cycle_life": v} for v in replicates])


def test_replicates_of_the_recommended_point_decide_between_noisy_runs():
    """A lucky single cell loses to a point whose replicates hold up."""
    steady = single_objective_run("bo", [120, 124, 126], [125, 124, 126])
    lucky = single_objective_run("random", [110, 129, 117], [121, 119, 123])
    a, b = analysis.score(steady), analysis.score(lucky)
    assert (a.best, b.best) == (126, 129)  # on single results the lucky run would win
    assert a.replicate_mean == pytest.approx(125) and a.replicate_std == pytest.approx(1.0) and a.replicates == 3
    assert b.value == pytest.approx(121) and analysis.winner(a, b) == "bo"
    assert a.headline == "cycle_life 125 ± 1 (3 replicates of the recommended point; best single 126)"
    assert a.best_parameters == {"x": 0.2} and a.replicated_parameters == {"x": 0.2}
    close = single_objective_run("close", [120, 128], [124, 126, 121])  # mean 123.7, 1 below: no evidence
    assert analysis.within_noise(a, analysis.score(close)) and analysis.winner(a, analysis.score(close)) is None
    assert not analysis.within_noise(a, b)
    alone = single_objective_run("none", [100, 101], [])  # no replicates: the best single result counts
    assert analysis.score(alone).value == 101 and analysis.score(alone).replicate_mean is None


def test_replicates_are_asked_for_only_where_an_instrument_is_noisy():
    from labweave.services.demo.replicates import recommended_point

    assert RECIPES["electrolyte"].replicates >= 2
    assert RECIPES["pld"].replicates == 0 and RECIPES["materials"].replicates == 0
    assert recommended_point(single_objective_run("bo", [120, 124, 126], [])) == {"x": 0.2}  # random: best single
    assert recommended_point(single_objective_run("empty", [], [])) is None


# ---------------------------------------------------------------- the whole lab, briefly
DEMO = [sys.executable, "-m", "labweave.services.cli.main", "demo"]


def test_unknown_campaign_is_refused_by_name(tmp_path):
    proc = subprocess.run([*DEMO, "--campaigns", "pld,cake", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--campaigns: unknown cake" in proc.stderr


@pytest.mark.slow
def test_short_demo_runs_the_lab_and_writes_its_report(tmp_path):
    out = tmp_path / "report"
    env = {**os.environ, "LABWEAVE_PASSWORD_ROUNDS": "4", "PYBAMM_DISABLE_TELEMETRY": "true"}
    proc = subprocess.run([*DEMO, "--campaigns", "pld", "--budget", "4", "--seed", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # the terminal summary names both runs with their numbers
    assert re.search(r"pld-srtio3-smooth\s.*bayesian.*hypervolume \d", proc.stdout)
    assert re.search(r"hypervolume \d[\d.]*(e[+-]?\d+)? \(\d+ on the front\)", proc.stdout)

    # figures and a self-contained page
    for name in ("pld-progress.png", "pld-pareto.png", "pld-predictions.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, name
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3
    assert "pld-srtio3-smooth-random" in page and "random baseline" in page

    summary = json.loads((out / "summary.json").read_text())["campaigns"]["pld"]
    for role, strategy in (("optimised", "bayesian"), ("baseline", "random")):
        score = summary[role]
        assert score["strategy"] == strategy and score["experiments"] == 4 and score["failed"] == 0
        assert math.isfinite(score["hypervolume"]) and score["hypervolume"] >= 0
        assert 0 < score["best"] < 5  # nm of RMS roughness
    assert summary["reference"] == {"roughness": 1.0, "oscillations": 3.0}
    assert summary["calibration"]["roughness"]["n"] >= 1  # the model made proposals and was scored on them
    assert summary["calibration"]["oscillations"]["n"] >= 1

    # each run's data exported as `labweave export` does, linked from the page
    for name in ("pld-srtio3-smooth", "pld-srtio3-smooth-random"):
        table = read_frame(out / "data" / f"{name}.csv", "csv")
        assert len(table) == 4 and (table["status"] == "resolved").all()
        assert table["objective.roughness"].notna().all() and table["strategy"].notna().all()
        crate = json.loads((out / "data" / f"{name}-crate" / "ro-crate-metadata.json").read_text())
        assert crate["@context"] == "https://w3id.org/ro/crate/1.1/context"
        assert sum(e["@type"] == "CreateAction" for e in crate["@graph"]) == 8  # proposal and measurement each
        assert f'href="data/{name}.csv"' in page
    assert summary["exports"]["pld-srtio3-smooth"]["table"] == "data/pld-srtio3-smooth.csv"

    # the numbers came from real requests, resolved by the PLD tenant through the server
    with sqlite3.connect(out / "labweave.db") as db:
        rows = db.execute("select campaign, status, count(*) from request group by campaign, status").fetchall()
        owners = db.execute("select count(distinct last_owner_uuid) from request").fetchone()[0]
    assert sorted(rows) == [("pld-srtio3-smooth", "resolved", 4), ("pld-srtio3-smooth-random", "resolved", 4)]
    assert owners == 1


@pytest.mark.slow
def test_electrolyte_demo_confirms_each_runs_recommended_point_with_replicates(tmp_path):
    """The battery line end to end in the demo: cells built and cycled for both runs, then replicates."""
    out = tmp_path / "report"
    env = {**os.environ, "LABWEAVE_PASSWORD_ROUNDS": "4", "PYBAMM_DISABLE_TELEMETRY": "true"}
    proc = subprocess.run([*DEMO, "--campaigns", "electrolyte", "--budget", "2", "--seed", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "measuring replicates of the point each run recommends" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())["campaigns"]["electrolyte"]
    count = RECIPES["electrolyte"].replicates
    for role in ("optimised", "baseline"):
        score = summary[role]
        assert score["replicates"] + summary_failures(out, score["name"]) == count
        if score["replicates"]:
            assert score["value"] == pytest.approx(score["replicate_mean"]) and score["replicate_mean"] > 0
            assert "replicates of the recommended point" in score["headline"]
    with sqlite3.connect(out / "labweave.db") as db:
        labels = dict(db.execute("select campaign, count(*) from request where parent_uuid is null "
                                 "group by campaign").fetchall())
        replicated = [json.loads(p)["parameters"] for (p,) in db.execute(
            "select provenance from request where campaign = 'electrolyte-cycle-life-replicates'")]
    assert labels["electrolyte-cycle-life-replicates"] == labels["electrolyte-cycle-life-random-replicates"] == count
    # two results are fewer than the initial design: the Bayesian strategy recommends its best single one
    assert replicated[0] == summary["optimised"]["replicated_parameters"] == summary["optimised"]["best_parameters"]
    assert len({json.dumps(p) for p in replicated}) == 1
    assert f"measured {count} times more" in (out / "report.html").read_text()


def summary_failures(out, run_name: str) -> int:
    """Replicates of a run that gave no result (failed cells exhaust their attempts)."""
    with sqlite3.connect(out / "labweave.db") as db:
        return db.execute("select count(*) from request where campaign = ? and status != 'resolved'",
                          (run_name + "-replicates",)).fetchone()[0]


def test_status_board_draws_runs_and_instruments():
    from rich.console import Console

    from labweave.services.demo.progress import RunView, StatusBoard

    console = Console(record=True, width=120, force_terminal=True)
    view = RunView("pld", "optimised", demo_campaign("pld", budget=6).optimised)
    requests = [request("a", second=0), request("b", second=1), request("c", status="reserved", second=2)]
    view.update({"status": "running", "state": {"best": {"value": 0.125}}}, requests, None)
    reserved = [request("c", status="reserved", method="pld_growth", campaign=view.name).model_copy(
        update={"owner_tenant_uuid": "t1"})]
    console.print(StatusBoard(console)._render([view], reserved, {"t1": "pld-chamber", "t2": "emt-code"}))
    text = console.export_text()
    assert "pld-srtio3-smooth" in text and "2 / 6 experiments" in text and "roughness 0.125" in text
    assert re.search(r"pld-chamber\s+q/pld_growth \(pld-srtio3-smooth\)", text)
    assert re.search(r"emt-code\s+idle", text)
    assert view.in_flight == 1 and view.line().startswith("pld-srtio3-smooth (bayesian): 2 / 6 experiments")


def test_status_board_counts_a_cost_budget_in_cost():
    from labweave.services.demo.progress import RunView

    view = RunView("materials", "optimised", demo_campaign("materials").optimised)
    requests = [request("a", method="chgnet"), request("b", method="emt"), request("c", method="emt", status="failed")]
    view.update({"status": "finished", "state": {}}, requests, None)
    assert view.count() == "21 / 200 cost" and view.failed == 1 and view.progress.finished


def test_multi_fidelity_runs_are_scored_at_the_target_fidelity_against_cost(tmp_path):
    from labweave.services.demo import figures

    campaign = Campaign(CampaignSpec.model_validate({
        "name": "alloys", "budget": 10, "initial_design": 1,
        "request": {"quantity": "bulk_properties", "methods": ["chgnet", "emt"],
                    "parameters": {"chgnet": {"x": "{x}"}, "emt": {"x": "{x}"}}},
        "space": {"parameters": [{"name": "x", "lower": 0.0, "upper": 1.0}]},
        "objectives": [{"name": "formation_energy", "path": "e", "direction": "minimize"}],
        "strategy": {"name": "random", "settings": {"budget": 100.0,
                                                    "fidelities": [{"method": "chgnet", "cost": 1.0},
                                                                   {"method": "emt", "cost": 20.0}]}},
    }))
    measured = [("chgnet", -0.30), ("chgnet", -0.10), ("emt", -0.05), ("chgnet", -0.40), ("emt", -0.12)]
    alloys = campaign_run(campaign, [(m, {"e": e}, {"parameters": {"x": i / 5},
                                                     "predicted_mean": {"formation_energy": e + 0.01},
                                                     "predicted_std": {"formation_energy": 0.02}})
                                      for i, (m, e) in enumerate(measured)])
    trace = analysis.trace(alloys)
    assert trace.curve.x == [1.0, 2.0, 22.0, 23.0, 43.0] and trace.curve.x_label == "cost spent"
    assert trace.curve.y == [None, None, -0.05, -0.05, -0.12]  # the screens do not count as found
    score = analysis.score(alloys)
    assert score.best == -0.12 and score.cost == 43.0 and "at emt" in score.headline
    # the baseline evaluates at the target fidelity only: it is charged and judged on the campaign's ladder
    baseline = campaign_run(Campaign(campaign.spec.model_copy(update={"strategy": campaign.spec.strategy.model_copy(
        update={"settings": {}})})), [("emt", {"e": -0.2}, {}), ("emt", {"e": -0.1}, {})])
    compared = analysis.compare(alloys, baseline)
    assert compared.baseline.cost == 40.0 and compared.baseline.best == -0.2 and "at emt" in compared.baseline.headline
    assert analysis.trace(baseline, compared.terms[1]).curve.x == [20.0, 40.0]
    methods = {p.method for p in analytics.predictions(alloys.terms, alloys.observations())["formation_energy"]}
    assert methods == {"chgnet", "emt"}
    path = figures.progress_figure(tmp_path / "p.png", "alloys", trace, trace)
    assert path.read_bytes().startswith(PNG)


def test_sisso_finds_the_law_behind_a_campaigns_results():
    from labweave.services.demo.symbolic import fit_formulas

    spec = CampaignSpec.model_validate({
        "name": "law", "budget": 20, "initial_design": 1,
        "request": {"quantity": "q", "methods": ["m"], "parameters": {"m": {"a": "{a}", "b": "{b}"}}},
        "space": {"parameters": [{"name": "a", "lower": 1.0, "upper": 3.0, "unit": "K"},
                                 {"name": "b", "lower": 1.0, "upper": 2.0, "unit": "Pa"}]},
        "objectives": [{"name": "rate", "path": "r"}],
    })
    grid = [(1.0 + 0.25 * i, 1.0 + 0.1 * ((3 * i) % 11)) for i in range(12)]
    observations = [analytics.Observation(i + 1, {"rate": 2.0 + 3.0 * a / b}, {"a": a, "b": b}, "m", True)
                    for i, (a, b) in enumerate(grid)]
    (formula,) = fit_formulas(spec.space, spec.objectives, observations)
    assert formula.objective == "rate" and formula.results == 12
    assert formula.rmse < 1e-6 and "(a / b)" in formula.text
    assert fit_formulas(spec.space, spec.objectives, observations[:5]) == []  # too few results


# ---------------------------------------------------------------- the package's shape
def test_the_demo_package_imports_one_way():
    """No import circle inside services/demo (TYPE_CHECKING imports included), and nothing imports lab."""
    import ast

    graph = {}
    for path in DEMO_PACKAGE.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labweave.services.demo."):
                found.add(node.module.rsplit(".", 1)[1])
        graph[path.stem] = {m.split(".")[0] for m in found} - {path.stem}
    assert {"lab", "analysis", "replicates", "progress", "runs"} <= set(graph)
    assert not [m for m, deps in graph.items() if "lab" in deps]

    def reaches(start, goal, seen=()):
        return any(d == goal or (d not in seen and reaches(d, goal, (*seen, d))) for d in graph.get(start, ()))

    assert [m for m in graph if reaches(m, m)] == []


def test_importing_the_figures_leaves_matplotlibs_backend_alone():
    code = ("import matplotlib; matplotlib.use('svg'); import labweave.services.demo.figures, sys; "
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["svg", "False"]

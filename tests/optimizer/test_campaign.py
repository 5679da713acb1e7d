"""Campaign files: loading, readable errors, requests, objective values and stopping."""

from __future__ import annotations

import re

import pytest

from labweave.optimizer.campaign import EXAMPLES, Campaign, CampaignFileError, load_campaign, parse_campaign
from labweave.optimizer.strategies import BayesianStrategy

ELECTROLYTE = (EXAMPLES / "electrolyte.toml").read_text()


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(keepends=True), start=1) if fragment in line)


def problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(CampaignFileError) as info:
        parse_campaign(text, source="electrolyte.toml")
    return [(p.line, p.field, p.message) for p in info.value.problems]


@pytest.mark.parametrize("name", ["electrolyte.toml", "pld.toml"])
def test_examples_load_and_build_their_strategy(name: str) -> None:
    spec = load_campaign(EXAMPLES / name)
    campaign = Campaign(spec)
    assert isinstance(campaign.make_strategy(), BayesianStrategy)
    assert spec.strategy.settings["initial_design"] == spec.initial_design
    point = campaign.space.sample_points(1, seed=0)[0]
    request = campaign.build_request(point)
    assert request["quantity"] == spec.request.quantity and request["methods"] == spec.request.methods


def test_request_template_keeps_value_types() -> None:
    campaign = Campaign(load_campaign(EXAMPLES / "electrolyte.toml"))
    point = {"ec_fraction": 0.3, "pc_fraction": 0.05, "emc_fraction": 0.5, "lipf6_fraction": 0.1,
             "vc_fraction": 0.02, "fec_fraction": 0.03}
    request = campaign.build_request(point)
    electrolyte = request["parameters"]["degradation_workflow"]["battery_chemistry"]["electrolyte"]
    assert [c["fraction"] for c in electrolyte] == [0.3, 0.05, 0.5, 0.1, 0.02, 0.03]
    assert electrolyte[0]["chemical"]["InChIKey"] == "KMTRUDSVKNLOMY-UHFFFAOYSA-N"
    assert electrolyte[4]["chemical"]["InChIKey"] == "VAYTZRYEBVHVLE-UHFFFAOYSA-N"  # VC
    with pytest.raises(ValueError, match="ec_fraction"):
        campaign.build_request({**point, "ec_fraction": 0.4})  # fractions no longer sum to one


def test_field_errors_name_the_field_and_the_line() -> None:
    bad = ELECTROLYTE.replace('direction = "maximize"', 'direction = "up"')
    [(line, field, message)] = problems(bad)
    assert field == "objectives[0].direction" and line == line_of(bad, 'direction = "up"')
    assert "maximize" in message

    bad = ELECTROLYTE.replace("lower = 0.04", 'lower = "low"')
    [(line, field, _)] = problems(bad)
    assert field == "space.parameters[3].lower" and line == line_of(bad, 'lower = "low"')

    bad = ELECTROLYTE.replace("budget = 40", "budget = 40\nbudgget = 3")
    [(line, field, message)] = problems(bad)
    assert field == "budgget" and message == "unknown field" and line == line_of(bad, "budgget")

    bad = ELECTROLYTE.replace("emc_fraction = -1.0 }", "dmc_fraction = -1.0 }")
    [(line, field, message)] = problems(bad)
    assert field == "space.constraints[1].coefficients" and "dmc_fraction" in message
    assert line == line_of(bad, "dmc_fraction = -1.0")


def test_strategy_settings_are_checked_against_the_strategy() -> None:
    bad = ELECTROLYTE.replace('acquisition = "qlognei"', 'acquisition = "ucb"')
    [(line, field, _)] = problems(bad)
    assert field == "strategy.settings.acquisition" and line == line_of(bad, 'acquisition = "ucb"')

    bad = ELECTROLYTE.replace('name = "bayesian"', 'name = "genetic"')
    [(line, field, message)] = problems(bad)
    assert field == "strategy.name" and "genetic" in message and line == line_of(bad, 'name = "genetic"')

    bad = ELECTROLYTE.replace("seed = 7", "seed = 7\ninitial_design = 9")
    [(_, field, message)] = problems(bad)
    assert field == "strategy.settings.initial_design" and "conflicts" in message


def test_cross_field_errors_and_toml_syntax() -> None:
    bad = ELECTROLYTE.replace("{lipf6_fraction}", "{salt}")
    [(line, field, message)] = problems(bad)
    assert field == "request.parameters" and "salt" in message and line is not None

    bad = ELECTROLYTE.replace("rhs = 0.2\n", "rhs = \n")
    [(line, field, message)] = problems(bad)
    assert field == "" and message.startswith("TOML syntax") and line == line_of(bad, "rhs = \n")
    with pytest.raises(CampaignFileError, match=r"electrolyte.toml:\d+: TOML syntax"):
        parse_campaign(bad, source="electrolyte.toml")


def test_read_values_follows_dotted_paths() -> None:
    spec = load_campaign(EXAMPLES / "electrolyte.toml")
    first_cell = spec.model_copy(update={
        "objectives": [spec.objectives[0].model_copy(update={"path": "degradationEOL.0.end_of_life",
                                                             "aggregate": None})],
        "outcome_constraints": []})
    campaign = Campaign(first_cell)
    data = {"degradationEOL": [{"end_of_life": 812, "end_of_life_uncertainty": 31.5}]}
    assert campaign.read_values(data) == {"cycle_life": 812.0}
    with pytest.raises(ValueError, match="cycle_life: path 'degradationEOL.0.end_of_life'"):
        campaign.read_values({"degradationEOL": []})
    with pytest.raises(ValueError, match="holds 'long', not a number"):
        campaign.read_values({"degradationEOL": [{"end_of_life": "long"}]})


def cell(eol: float, uncertainty: float = 2.0, success: bool = True) -> dict:
    return {"end_of_life": eol, "end_of_life_uncertainty": uncertainty, "meta": {"success": success}}


def test_replicate_cells_are_read_as_their_median_without_failed_cells() -> None:
    campaign = Campaign(load_campaign(EXAMPLES / "electrolyte.toml"))
    # a leaky cell (90) among three does not move the median; a shorted cell (12, failed) is left out
    data = {"degradationEOL": [cell(201), cell(90, 30.0), cell(12, 1.0, success=False), cell(205)]}
    assert campaign.read_values(data) == {"cycle_life": 201.0, "eol_uncertainty": 2.0}
    # two cells left: the median is their mean
    two = {"degradationEOL": [cell(201, 1.0), cell(12, success=False), cell(205, 3.0)]}
    assert campaign.read_values(two) == {"cycle_life": 203.0, "eol_uncertainty": 2.0}
    with pytest.raises(ValueError, match="none of the 1 entries is a successful measurement"):
        campaign.read_values({"degradationEOL": [cell(12, success=False)]})
    with pytest.raises(ValueError, match=r"entry 1: end_of_life: no key"):
        campaign.read_values({"degradationEOL": [cell(201), {"meta": {"success": True}}]})
    with pytest.raises(ValueError, match="'\\*' needs a list at degradationEOL, found dict"):
        campaign.read_values({"degradationEOL": {"end_of_life": 3}})


@pytest.mark.parametrize(("path", "aggregate", "message"), [
    ("degradationEOL.*.end_of_life", None, "say how to combine it"),
    ("degradationEOL.0.end_of_life", "median", "needs a '\\*' segment"),
    ("runs.*.cells.*.eol", "mean", "2 '\\*' segments"),
])
def test_aggregate_and_star_paths_go_together(path: str, aggregate: str | None, message: str) -> None:
    line = f'path = "{path}"\n' + (f'aggregate = "{aggregate}"\n' if aggregate else "")
    text = ELECTROLYTE.replace('path = "degradationEOL.*.end_of_life"\naggregate = "median"\n', line)
    assert text != ELECTROLYTE
    [(_, field, found)] = problems(text)
    assert field.startswith("objectives[0]")
    assert re.search(message, found), found


def test_stopping_rules_and_batch_sizes() -> None:
    campaign = Campaign(load_campaign(EXAMPLES / "electrolyte.toml"))
    point = {"ec_fraction": 0.3, "emc_fraction": 0.58, "lipf6_fraction": 0.1, "vc_fraction": 0.02}
    assert campaign.proposals_wanted(requests_made=0, in_flight=0) == 2
    assert campaign.proposals_wanted(requests_made=39, in_flight=0) == 1
    assert campaign.proposals_wanted(requests_made=10, in_flight=2) == 0
    assert campaign.stop_reason([], requests_made=40) == "budget of 40 requests spent"

    def obs(life: float, sigma: float = 20.0):
        return (point, {"cycle_life": life, "eol_uncertainty": sigma})

    assert campaign.stop_reason([obs(800), obs(900)], requests_made=2) is None
    assert "target reached" in campaign.stop_reason([obs(800), obs(1600)], requests_made=2)
    # Too uncertain to count: the outcome constraint excludes it.
    assert campaign.stop_reason([obs(800), obs(1600, sigma=500)], requests_made=2) is None
    stalled = [obs(900)] + [obs(900 + 0.5 * i) for i in range(12)]  # 6 cycles in all: below min_improvement = 10
    assert campaign.stop_reason(stalled, requests_made=13) == "no improvement in the last 12 results"
    assert campaign.stop_reason(stalled[:12], requests_made=12) is None


def test_only_target_fidelity_results_count_for_stopping_and_the_best() -> None:
    """A cheap screen that looks like a record is a hint: it neither reaches a target nor resets the
    no-improvement window of a multi-fidelity campaign."""
    text = (EXAMPLES / "materials.toml").read_text()
    text += "\n[stopping]\nno_improvement_in = 3\nmin_improvement = 0.001\n"
    campaign = Campaign(parse_campaign(text, source="materials.toml"))
    assert campaign.target_fidelity() == ("method", "emt")

    def obs(method: str, energy: float):
        return ({"method": method, "Cu": 0.5, "Ni": 0.5}, {"formation_energy": energy})

    confirmed = [obs("emt", -0.05)] + [obs("emt", -0.04) for _ in range(3)]
    assert campaign.stop_reason(confirmed, requests_made=4) == "no improvement in the last 3 results"
    # screens in between (even ones that look better) change nothing ...
    mixed = [obs("emt", -0.05), obs("chgnet", -0.30), obs("emt", -0.04), obs("chgnet", -0.31),
             obs("emt", -0.04), obs("emt", -0.04)]
    assert campaign.stop_reason(mixed, requests_made=6) == "no improvement in the last 3 results"
    # ... and screens alone never count as progress
    assert campaign.stop_reason([obs("chgnet", -0.3 - 0.1 * i) for i in range(6)], requests_made=6) is None
    assert not campaign.at_target({"Cu": 0.5, "Ni": 0.5})


def test_the_daemons_summary_reports_the_best_target_fidelity_result() -> None:
    from labweave.optimizer import analytics
    from labweave.services.optimizer_daemon import Turn, summarise
    from tests.campaign_records import run

    campaign = Campaign(load_campaign(EXAMPLES / "materials.toml"))
    terms = analytics.CampaignTerms.of(campaign.spec)
    measured = [("chgnet", -0.20), ("emt", -0.03), ("chgnet", -0.25), ("emt", -0.05)]
    requests, results = run([(m, {"formation_energy_per_atom": e},
                              {"fidelity": m, "parameters": {"method": m, "x_Cu": 0.5, "x_Ni": 0.5}})
                             for m, e in measured])
    turn = Turn(requests, analytics.observations(terms, requests, results),
                analytics.progress(terms, "running", requests))
    state = summarise(campaign, terms, turn, [])
    assert state["best"]["value"] == -0.05 and state["best"]["parameters"]["method"] == "emt"
    assert [h["best"] for h in state["history"]] == [None, -0.03, -0.03, -0.05]
    assert [h["counts"] for h in state["history"]] == [False, True, False, True]
    assert state["progress"] | {"status": None} == {"status": None, "unit": "cost", "done": 42.0,
                                                     "in_flight": 0.0, "total": 300.0, "requests": 4}
    assert state["summary"] == "42 / 300 cost, best formation_energy at emt -0.05"

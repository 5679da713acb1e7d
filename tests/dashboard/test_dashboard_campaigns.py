"""A campaign's page built from the server's records: observations read from results, the Pareto
front of two objectives, and a page that survives whatever the optimizer writes into its state."""

from __future__ import annotations

import re

import pytest

from tests.server.helpers import flow_request, flow_result, open_lab, two_flow_tenants

SPEC = {
    "description": "volume against rating",
    "objectives": [{"name": "volume", "path": "electrolyte.volume", "direction": "maximize"},
                   {"name": "rating", "path": "electrolyte.meta.rating", "direction": "minimize"}],
    "budget": 8,
}


@pytest.fixture
def lab(database_url):
    """The lab on SQLite and, where it runs, PostgreSQL."""
    lab = open_lab(database_url)
    two_flow_tenants(lab)
    yield lab
    lab.lab.close()


def run(lab, campaign: str, volume: float, rating: int) -> str:
    """One request of the campaign, claimed and answered by the ASAB tenant."""
    uuid = lab.post("op", "/api/v1/requests", json=flow_request() | {"campaign": campaign}).json()["uuid"]
    assert lab.post("asab", "/api/v1/claims", json={}).json()["request"]["uuid"] == uuid
    body = flow_result(uuid, lab.tenants["ASAB_tenant"])
    body["data"]["electrolyte"]["volume"] = volume
    body["data"]["electrolyte"]["meta"]["rating"] = rating
    r = lab.post("asab", "/api/v1/results", json=body)
    assert r.status_code in (200, 201), r.text
    return uuid


def test_two_objectives_show_their_pareto_front_from_the_results(lab):
    lab.client.put("/api/v1/campaigns/pareto", json={"spec": SPEC}, headers=lab.headers("op"))
    for volume, rating in ((2.0, 5), (2.5, 3), (3.0, 4), (1.5, 2)):
        run(lab, "pareto", volume, rating)
    lab.client.post("/dashboard/login", data={"username": "op", "password": "op"})
    page = lab.client.get("/dashboard/campaigns/pareto").text
    pareto = page[page.index('data-chart="pareto"'):]
    pareto = pareto[:pareto.index("</svg>")]
    front = re.findall(r'class="point front"[^>]*data-x="([^"]+)" data-y="([^"]+)"', pareto)
    assert sorted(front) == [("1.5", "2"), ("2.5", "3"), ("3", "4")]  # (2.0, 5) is dominated by (2.5, 3)
    assert pareto.count('class="point"') == 1
    assert '<progress value="4" max="8"' in page and "volume ↑" in page and "rating ↓" in page
    assert re.search(r'data-testid="front">3<', page)
    listing = lab.client.get("/dashboard/fragments/campaigns").text
    assert 'data-campaign="pareto"' in listing and "4 / 8 experiments" in listing


def test_one_objective_derives_its_best_so_far_from_the_results(lab):
    spec = SPEC | {"objectives": SPEC["objectives"][:1]}
    lab.client.put("/api/v1/campaigns/single", json={"spec": spec}, headers=lab.headers("op"))
    for volume in (2.0, 2.8, 2.4):
        run(lab, "single", volume, 3)
    lab.client.post("/dashboard/login", data={"username": "op", "password": "op"})
    page = lab.client.get("/dashboard/campaigns/single").text
    history = page[page.index('data-chart="history"'):]
    history = history[:history.index("</svg>")]
    best = history[history.index('data-series="best so far"'):]
    assert re.findall(r'data-y="([^"]+)"', best) == ["2", "2.8", "2.8"]
    assert 'data-testid="best">2.8<' in page


def test_an_objective_aggregating_replicate_entries_is_read_as_the_campaign_says(lab):
    """A ``*`` path with its aggregate (the demo's cycle life: the median of the cells) shows on the page."""
    spec = {"objectives": [{"name": "share", "path": "electrolyte.formulation.*.fraction", "aggregate": "median",
                            "direction": "maximize"}], "budget": 4}
    lab.client.put("/api/v1/campaigns/replicated", json={"spec": spec}, headers=lab.headers("op"))
    for fractions in ((0.2, 0.4, 0.9), (0.7, 0.1, 0.8)):
        uuid = lab.post("op", "/api/v1/requests", json=flow_request() | {"campaign": "replicated"}).json()["uuid"]
        assert lab.post("asab", "/api/v1/claims", json={}).json()["request"]["uuid"] == uuid
        body = flow_result(uuid, lab.tenants["ASAB_tenant"])
        cell = body["data"]["electrolyte"]["formulation"][0]
        body["data"]["electrolyte"]["formulation"] = [cell | {"fraction": f} for f in fractions]
        assert lab.post("asab", "/api/v1/results", json=body).status_code in (200, 201)
    lab.client.post("/dashboard/login", data={"username": "op", "password": "op"})
    r = lab.client.get("/dashboard/campaigns/replicated")
    assert r.status_code == 200, r.text[-2000:]
    history = r.text[r.text.index('data-chart="history"'):]
    history = history[:history.index("</svg>")]
    assert re.findall(r'data-series="observed".*?data-y="([^"]+)".*?data-y="([^"]+)"', history, re.S) == [
        ("0.4", "0.7")]  # the medians of the two results' entries
    assert 'data-testid="best">0.7<' in r.text


def test_a_finished_campaign_with_a_cost_budget_shows_its_progress_in_cost(lab):
    """A multi-fidelity campaign spends cost units, each result charged its fidelity's cost."""
    spec = SPEC | {"objectives": SPEC["objectives"][:1], "budget": 40, "strategy": {
        "name": "multifidelity", "settings": {"budget": 20.0, "fidelities": [{"method": "screen", "cost": 1.0},
                                                                           {"method": "flow", "cost": 5.0}]}}}
    lab.client.put("/api/v1/campaigns/costly", json={"spec": spec}, headers=lab.headers("op"))
    for volume in (2.0, 2.8):
        run(lab, "costly", volume, 3)
    lab.client.put("/api/v1/campaigns/costly", json={"spec": spec, "status": "finished"}, headers=lab.headers("op"))
    lab.client.post("/dashboard/login", data={"username": "op", "password": "op"})
    listing = lab.client.get("/dashboard/campaigns").text
    row = listing[listing.index('data-campaign="costly"'):]
    row = row[:row.index("</tr>")]
    assert 'data-status="finished"' in row and ">finished<" in row
    assert re.search(r'data-unit="cost">10 / 20 cost<', row)  # two results at 5 cost units each
    page = lab.client.get("/dashboard/campaigns/costly").text
    assert '<progress value="10" max="20"' in page and "Cost spent · finished" in page
    history = page[page.index('data-chart="history"'):]
    assert "cost spent" in history[:history.index("</svg>")]  # the x axis counts what the budget counts


MALFORMED_STATES = [
    {"best": "high", "history": "none", "predictions": [1, {"mean": None}], "next": [None, {"parameters": 3}]},
    {"best": {"value": "3.1"}, "history": [{"n": "x", "value": 1.0}], "formulas": {"f1": "a*b"}},
    {"next": [{"parameters": {"x": 1}, "predicted_mean": 1.0, "predicted_std": -0.5}], "formulas": "x**2",
     "model_version": 3},
]


def test_a_malformed_state_does_not_break_the_page(lab):
    lab.client.put("/api/v1/campaigns/odd", json={"spec": {"objectives": "volume", "budget": "many"}},
                   headers=lab.headers("op"))
    lab.client.post("/dashboard/login", data={"username": "op", "password": "op"})
    for state in MALFORMED_STATES:
        assert lab.client.put("/api/v1/campaigns/odd/state", json={"state": state},
                              headers=lab.headers("op")).status_code == 200
        r = lab.client.get("/dashboard/campaigns/odd")
        assert r.status_code == 200 and 'data-chart="history"' in r.text, state
    assert "x**2" in r.text and ">1 ± 0.5<" in r.text  # a negative σ is read as its size


def test_the_leading_formula_and_how_it_changed_come_from_the_requests(lab):
    lab.client.put("/api/v1/campaigns/symbolic", json={"spec": SPEC | {"objectives": SPEC["objectives"][:1]}},
                   headers=lab.headers("op"))

    def lead(formula: str, descriptor: str, members: int) -> dict:
        return {"strategy": "sisso", "model_version": "v", "reason": "log EI maximum",
                "formulas": [{"formula": formula, "descriptor": descriptor, "members": members, "of": 16, "rmse": 0.1}]}

    provenances = [
        {"strategy": "sisso", "model_version": "v", "reason": "initial design 1 of 8"},
        lead("B = 120 + 30 * (r_B / r_A)", "(r_B / r_A)", 5),
        lead("B = 118 + 31 * (r_B / r_A)", "(r_B / r_A)", 6),
        lead("B = 95 + 41 * (n_B * X_B)", "(n_B * X_B)", 9),
    ]
    for prov in provenances:
        r = lab.post("op", "/api/v1/requests", json=flow_request() | {"campaign": "symbolic", "provenance": prov})
        assert r.status_code in (200, 201), r.text
    lab.client.post("/dashboard/login", data={"username": "op", "password": "op"})
    page = lab.client.get("/dashboard/campaigns/symbolic").text
    now = page[page.index('data-testid="formula-now"'):]
    assert now.startswith('data-testid="formula-now">Leading formula now (9/16 members): <code>B = 95 + 41 * (n_B * X_B)')
    history = page[page.index('data-testid="formula-history"'):page.index("</table>", page.index('data-testid="formula-history"'))]
    rows = re.findall(r"#(\d+)</code></td><td><code>([^<]+)</code></td>\s*<td class=\"num\">(\d+)</td>", history)
    assert rows == [("4", "B = 95 + 41 * (n_B * X_B)", "1"), ("2", "B = 118 + 31 * (r_B / r_A)", "2")]

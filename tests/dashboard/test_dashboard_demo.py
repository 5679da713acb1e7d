"""The dashboard after a short real demo: every page of every campaign the demo ran renders without an error.

``labweave demo`` runs its three campaigns (two objectives; one objective
aggregating replicate cells; several fidelities under a cost budget) and
their random baselines on small budgets; its database is then served again
and headless Chromium opens the overview, the tenants, the queue, the
campaigns list and each campaign's page, as the operator the demo creates.
Screenshots go to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from dashboard_support import log_in
from labweave.services.server.process import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The demo's campaigns, and each run's budget: small, so that the whole lab runs in about two minutes.
CAMPAIGNS, BUDGET = "pld,electrolyte,materials", "2"
#: The runs it makes: each campaign and its random-search baseline.
RUNS = {"pld-srtio3-smooth", "electrolyte-cycle-life", "fcc-alloy-mixing-energy"}
RUNS |= {f"{name}-random" for name in RUNS}
PAGES = ("/dashboard", "/dashboard/tenants", "/dashboard/queue", "/dashboard/campaigns")
#: Text that would say a page broke.
ERRORS = ("Internal Server Error", "Traceback", "Error:")


@pytest.fixture(scope="module")
def demo_lab(tmp_path_factory):
    """The database a short demo leaves, served by ``labweave serve``."""
    out = tmp_path_factory.mktemp("demo") / "report"
    env = {**os.environ, "LABWEAVE_PASSWORD_ROUNDS": "4", "PYBAMM_DISABLE_TELEMETRY": "true"}
    proc = subprocess.run([sys.executable, "-m", "labweave.services.cli.main", "demo", "--campaigns", CAMPAIGNS,
                           "--budget", BUDGET, "--replicates", "0", "--seed", "3", "--out", str(out)],
                          capture_output=True, text=True, timeout=420, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    database = out / "labweave.db"
    with ServerProcess(f"sqlite:///{database}", env={"LABWEAVE_PASSWORD_ROUNDS": "4"},
                       log_path=out / "logs" / "dashboard.log") as server:
        yield server, database


def test_every_page_of_every_campaign_the_demo_ran_renders(demo_lab, browser, artifacts):
    server, database = demo_lab
    with sqlite3.connect(database) as db:
        campaigns = dict(db.execute("select name, status from campaign").fetchall())
    assert set(campaigns) == RUNS
    assert set(campaigns.values()) == {"finished"}  # every run ended as finished, the cost-budgeted one too

    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"{page.url}: {exc}"))
    page.on("console", lambda msg: problems.append(f"{page.url}: {msg.text}") if msg.type == "error" else None)
    log_in(page, "operator")
    expect(page.get_by_test_id("role")).to_have_text("operator")

    for path in (*PAGES, *(f"/dashboard/campaigns/{name}" for name in sorted(RUNS))):
        response = page.goto(path)
        assert response is not None and response.status == 200, (path, response and response.status)
        body = page.locator("main").inner_text()
        assert not [e for e in ERRORS if e in body], (path, body[:2000])
        if path.startswith("/dashboard/campaigns/"):
            name = path.rsplit("/", 1)[1]
            expect(page.locator(f'.campaign[data-campaign="{name}"]')).to_have_attribute("data-status", "finished")
            expect(page.locator('[data-chart="history"] svg')).to_be_visible()
            expect(page.locator('[data-chart="history"] svg circle.point').first).to_be_visible()
            fragment = page.request.get(f"/dashboard/fragments/campaigns/{name}")
            assert fragment.status == 200, (name, fragment.status)
            page.screenshot(path=artifacts / f"demo-{name}.png", full_page=True)

    # progress in each budget's own unit: the multi-fidelity run in cost, the others in experiments
    page.goto("/dashboard/campaigns")
    units = {name: page.locator(f'tr[data-campaign="{name}"] [data-testid="progress"]').get_attribute("data-unit")
             for name in RUNS}
    assert units == {name: "cost" if name == "fcc-alloy-mixing-energy" else "experiments" for name in RUNS}
    expect(page.locator('tr[data-campaign="electrolyte-cycle-life"] [data-testid="progress"]')).to_have_text(
        "2 / 2 experiments")
    expect(page.locator('tr[data-campaign="fcc-alloy-mixing-energy"] [data-testid="progress"]')).to_contain_text(
        " / 40 cost")
    page.screenshot(path=artifacts / "demo-campaigns.png", full_page=True)
    assert problems == []
    context.close()

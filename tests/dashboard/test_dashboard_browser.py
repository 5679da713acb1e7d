"""The dashboard in headless Chromium against a real server: what an operator and a requester see and do.

The lab is driven through the JSON API (httpx) while the page is open; the
page must follow without being reloaded (its script refreshes fragments on
the server's events). Screenshots go to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from dashboard_support import CAMPAIGN, CAMPAIGN_SPEC, CAMPAIGN_STATE, log_in, provenance

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def wait_for(check, timeout: float = 10.0, what: str = "condition"):
    """Poll ``check`` until it returns a true value (the server's side of a click)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_campaign(lab) -> list[dict]:
    """The campaign, its optimizer state, one result of it, and two proposals awaiting approval."""
    assert lab.call("op", "PUT", f"/api/v1/campaigns/{CAMPAIGN}", json={"spec": CAMPAIGN_SPEC}).status_code == 200
    assert lab.call("op", "PUT", f"/api/v1/campaigns/{CAMPAIGN}/state",
                    json={"state": CAMPAIGN_STATE}).status_code == 200
    done = lab.request("op", volume=3.1, campaign=CAMPAIGN, priority=10, provenance=provenance(2.9, 0.7, "initial design"))
    claimed = lab.claim("asab2")
    assert claimed["uuid"] == done["uuid"]
    lab.resolve(done["uuid"], 3.1, tenant_user="asab2")
    return [lab.request("op", volume=v, campaign=CAMPAIGN, proposed=True, provenance=provenance(m, a, why))
            for v, m, a, why in ((3.4, 3.3, 0.82, "highest expected improvement"),
                                 (2.9, 2.8, 0.41, "explores the high-EC corner"))]


def test_operator_watches_and_steers_the_lab(seeded, new_page, artifacts):
    lab = seeded
    asab = lab.tenants["ASAB_tenant"]
    page = new_page()

    # Nothing without logging in: the page sends the browser to the login form, and back after it.
    page.goto("/dashboard/queue")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next=%2Fdashboard%2Fqueue$"))
    page.fill("input[name=username]", "op")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    expect(page.get_by_test_id("login-error")).to_contain_text("Incorrect username or password")
    page.fill("input[name=password]", "op")
    page.screenshot(path=artifacts / "01-login.png")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/dashboard/queue$"))
    expect(page.get_by_test_id("user")).to_contain_text("op")
    expect(page.get_by_test_id("role")).to_have_text("operator")

    # Tenants: nobody heard from yet; then requests arrive and a tenant claims one, live.
    page.goto("/dashboard/tenants")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    row = page.locator(f'tr[data-tenant="{asab}"]')
    expect(row).to_have_attribute("data-state", "never seen")
    expect(row).to_contain_text("electrolyte / flow")
    expect(row).to_contain_text("CCOC(=O)OC 0.35–1 molPerMol")
    requests = [lab.request(volume=v) for v in (2.0, 2.4, 2.8)]
    claimed = lab.claim("asab")
    assert claimed["uuid"] == requests[0]["uuid"]
    expect(row).to_have_attribute("data-state", "online")
    expect(row.locator(f'[data-held="{claimed["uuid"]}"]')).to_contain_text("left")
    page.screenshot(path=artifacts / "02-tenants.png", full_page=True)

    # The queue fills as requests are created, claimed, failed and resolved.
    page.goto("/dashboard/queue")
    pending = page.locator('section[data-section="pending"] tr[data-request]')
    expect(pending).to_have_count(2)
    extra = lab.request(volume=3.0)
    expect(pending).to_have_count(3)
    failing = lab.claim("asab2")
    r = lab.call("asab2", "POST", f"/api/v1/requests/{failing['uuid']}/fail",
                 json={"reason": "pump pressure fault at 2.1 bar", "retryable": False})
    assert r.status_code == 200, r.text
    lab.resolve(claimed["uuid"], 2.9)
    expect(page.locator('section[data-section="failed"]')).to_contain_text("pump pressure fault at 2.1 bar")
    expect(page.locator('section[data-section="resolved"] tr[data-request]')).to_contain_text("volume = 2.9")
    expect(pending).to_have_count(2)
    page.screenshot(path=artifacts / "03-queue.png", full_page=True)

    # Search narrows every section at once, and the URL keeps the filter.
    page.fill("[data-testid=search]", "pump pressure")
    expect(page.locator("tr[data-request]")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=pump\+pressure"))
    page.fill("[data-testid=search]", "")
    expect(page.locator("tr[data-request]")).to_have_count(4)

    # Retract a queued request (the prompt for the reason is accepted with its default).
    page.locator(f'tr[data-request="{extra["uuid"]}"]').get_by_test_id("retract").click()
    wait_for(lambda: lab.status(extra["uuid"]) == "retracted", what="the retraction")
    expect(page.locator(f'section[data-section="retracted"] tr[data-request="{extra["uuid"]}"]')).to_have_count(1)
    history = lab.call("op", "GET", f"/api/v1/requests/{extra['uuid']}/history").json()
    assert history[-1]["actor"] == "op" and history[-1]["message"] == "retracted by op"

    # A campaign: progress, the best so far, the model's view, and proposals to approve.
    proposals = start_campaign(lab)
    page.goto(f"/dashboard/campaigns/{CAMPAIGN}")
    history_chart = page.locator('[data-chart="history"] svg')
    expect(history_chart.locator("circle.point")).to_have_count(2)  # 1 result, its running best
    expect(page.locator('[data-chart="parity"] svg circle.point')).to_have_count(1)  # the measured prediction
    expect(page.locator('[data-chart="parity"] svg line.error-bar')).to_have_count(1)
    expect(page.locator('[data-chart="parity"]')).to_contain_text("2 awaiting measurement")  # the proposals
    expect(page.get_by_test_id("best")).to_have_text("3.1")
    expect(page.get_by_test_id("next")).to_contain_text("highest expected improvement")
    expect(page.get_by_test_id("next")).to_contain_text("volume 3.3 ± 0.5")
    expect(page.locator('[data-testid="awaiting"]')).to_contain_text("volume 3.3 ± 0.4")
    expect(page.locator(".formulas")).to_contain_text("0.8*volume - 0.3*ec_fraction**2")
    awaiting = page.locator('[data-testid="awaiting"] tr[data-request]')
    expect(awaiting).to_have_count(2)
    page.screenshot(path=artifacts / "04-campaign.png", full_page=True)

    # A new result of the campaign: the chart follows without a reload.
    more = lab.request("op", volume=3.3, campaign=CAMPAIGN, priority=10, provenance=provenance(3.2, 0.6, "next"))
    assert lab.claim("asab2")["uuid"] == more["uuid"]
    lab.resolve(more["uuid"], 3.3, tenant_user="asab2")
    expect(history_chart.locator("circle.point")).to_have_count(4)
    expect(page.get_by_test_id("best")).to_have_text("3.3")
    expect(page.locator('[data-chart="parity"] svg circle.point')).to_have_count(2)

    # Approve one proposal, reject the other, pause the campaign.
    awaiting.filter(has=page.locator(f'code[title="{proposals[0]["uuid"]}"]')).get_by_test_id("approve").click()
    wait_for(lambda: lab.status(proposals[0]["uuid"]) == "pending", what="the approval")
    expect(awaiting).to_have_count(1)
    expect(page.locator("#toast")).to_contain_text("approved")
    awaiting.get_by_test_id("reject").click()
    wait_for(lambda: lab.status(proposals[1]["uuid"]) == "retracted", what="the rejection")
    expect(awaiting).to_have_count(0)
    page.get_by_test_id("pause").click()
    wait_for(lambda: lab.call("op", "GET", f"/api/v1/campaigns/{CAMPAIGN}").json()["status"] == "paused",
             what="the pause")
    expect(page.locator(f'.campaign[data-campaign="{CAMPAIGN}"]')).to_have_attribute("data-status", "paused")
    expect(page.get_by_test_id("resume")).to_be_visible()
    page.screenshot(path=artifacts / "05-campaign-paused.png", full_page=True)

    # The emergency stop of a tenant: confirmed, recorded, and the tenant claims nothing more.
    page.goto("/dashboard/tenants")
    row = page.locator(f'tr[data-tenant="{asab}"]')
    row.get_by_test_id("stop-tenant").click()
    wait_for(lambda: lab.call("op", "GET", f"/api/v1/tenants/{asab}").json()["stop_requested"], what="the stop")
    expect(row).to_have_attribute("data-state", "stop requested")
    expect(row.get_by_test_id("resume-tenant")).to_be_visible()
    r = lab.call("asab", "POST", "/api/v1/claims", json={})
    assert r.status_code == 409 and "asked to stop" in r.json()["detail"]
    page.screenshot(path=artifacts / "06-tenants-stopped.png", full_page=True)

    page.goto("/dashboard")
    expect(page.get_by_test_id("summary").locator('[data-count="failed"] .stat-value')).to_have_text("1")
    expect(page.get_by_test_id("activity")).to_contain_text("asked to stop (emergency stop)")
    page.screenshot(path=artifacts / "07-overview.png", full_page=True)

    # Logging out ends the session: the dashboard asks for the login again.
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    assert page.js_errors == []


def test_a_requester_sees_no_operator_controls(seeded, new_page, artifacts):
    lab = seeded
    asab = lab.tenants["ASAB_tenant"]
    proposals = start_campaign(lab)
    own = lab.request("alice", volume=2.2)
    page = new_page()
    log_in(page, "alice")
    expect(page.get_by_test_id("role")).to_have_text("requester")

    page.goto("/dashboard/queue")
    own_row = page.locator(f'tr[data-request="{own["uuid"]}"]')
    expect(own_row.get_by_test_id("retract")).to_be_visible()  # her own request: she may retract it
    page.goto("/dashboard/tenants")
    expect(page.locator(f'tr[data-tenant="{asab}"]')).to_be_visible()
    page.goto(f"/dashboard/campaigns/{CAMPAIGN}")  # the operator's campaign: not hers to see
    expect(page.locator("h1")).to_have_text("Not found")
    page.goto("/dashboard/campaigns")
    expect(page.locator(f'[data-campaign="{CAMPAIGN}"]')).to_have_count(0)
    page.screenshot(path=artifacts / "08-requester-campaigns.png", full_page=True)
    for path in ("/dashboard", "/dashboard/tenants", "/dashboard/queue", "/dashboard/campaigns",
                 f"/dashboard/campaigns/{CAMPAIGN}"):
        page.goto(path)
        for control in ("approve", "reject", "stop-tenant", "resume-tenant", "pause", "resume"):
            expect(page.get_by_test_id(control)).to_have_count(0)

    # The server refuses the controls anyway, with her session.
    json_only = {"Accept": "application/json"}
    # (an operator's action: 403; a campaign she may not see: 404, as if it were not there)
    for path, status in ((f"/dashboard/actions/requests/{proposals[0]['uuid']}/approve", 403),
                         (f"/dashboard/actions/tenants/{asab}/stop", 403),
                         (f"/dashboard/actions/campaigns/{CAMPAIGN}/pause", 404)):
        answer = page.request.post(path, headers=json_only)
        assert answer.status == status, (path, answer.status, answer.text())
        assert answer.json()["ok"] is False
    assert lab.status(proposals[0]["uuid"]) == "proposed"
    assert lab.call("op", "GET", f"/api/v1/tenants/{asab}").json()["stop_requested"] is False
    assert lab.call("op", "GET", f"/api/v1/campaigns/{CAMPAIGN}").json()["status"] == "running"

    # Her own request she retracts from the queue.
    page.goto("/dashboard/queue")
    page.locator(f'tr[data-request="{own["uuid"]}"]').get_by_test_id("retract").click()
    wait_for(lambda: lab.status(own["uuid"]) == "retracted", what="the retraction")
    page.screenshot(path=artifacts / "09-requester-queue.png", full_page=True)
    assert page.js_errors == []

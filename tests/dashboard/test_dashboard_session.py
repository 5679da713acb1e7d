"""The dashboard's login session and controls over HTTP (in-process): nothing without a session,
a cookie scripts cannot read, the server's own checks on every control."""

from __future__ import annotations

import pytest

from tests.server.helpers import flow_request, open_lab, two_flow_tenants

PAGES = ("/dashboard", "/dashboard/tenants", "/dashboard/queue", "/dashboard/campaigns")
FRAGMENTS = ("/dashboard/fragments/summary", "/dashboard/fragments/tenants", "/dashboard/fragments/queue",
             "/dashboard/fragments/campaigns", "/dashboard/fragments/activity")


@pytest.fixture
def lab(sqlite_url):
    lab = open_lab(sqlite_url)
    two_flow_tenants(lab)
    return lab


@pytest.fixture
def any_lab(database_url):
    """The lab on SQLite and, where it runs, PostgreSQL."""
    lab = open_lab(database_url)
    two_flow_tenants(lab)
    yield lab
    lab.lab.close()


def log_in(lab, user: str, password: str | None = None, next_path: str = ""):
    return lab.client.post("/dashboard/login", data={"username": user, "password": password or user,
                                                     "next": next_path}, follow_redirects=False)


def test_nothing_is_shown_without_a_session(lab):
    for path in PAGES:
        r = lab.client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/dashboard/login?next=%2Fdashboard"), path
    for path in FRAGMENTS + ("/dashboard/events",):
        assert lab.client.get(path).status_code == 401, path
    r = lab.client.post(f"/dashboard/actions/tenants/{lab.tenants['ASAB_tenant']}/stop",
                        headers={"Accept": "application/json"})
    assert r.status_code == 401
    assert lab.get("op", f"/api/v1/tenants/{lab.tenants['ASAB_tenant']}").json()["stop_requested"] is False
    # a bearer token is not a session: the dashboard reads only its cookie
    assert lab.get("op", "/dashboard/fragments/summary").status_code == 401


def test_login_sets_a_strict_http_only_cookie_and_logout_clears_it(lab):
    r = log_in(lab, "op", "wrong")
    assert r.status_code == 401 and "Incorrect username or password" in r.text
    assert "labweave_session" not in r.headers.get("set-cookie", "")
    r = log_in(lab, "op", next_path="/dashboard/queue?status=failed")
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/queue?status=failed"
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith("labweave_session=") and "httponly" in cookie and "samesite=strict" in cookie
    assert "path=/dashboard" in cookie and "max-age=" in cookie
    page = lab.client.get("/dashboard")
    assert page.status_code == 200 and "op" in page.text and "operator" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    r = lab.client.post("/dashboard/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"
    assert 'labweave_session=""' in r.headers["set-cookie"] or "max-age=0" in r.headers["set-cookie"].lower()
    assert lab.client.get("/dashboard", follow_redirects=False).status_code == 303


def test_login_never_sends_the_browser_elsewhere(lab):
    for target in ("https://evil.example/dashboard", "//evil.example/dashboard", "/docs", "/dashboard/login",
                   "/\\evil.example", "/dashboardx"):
        r = log_in(lab, "op", next_path=target)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard", target


def test_a_change_from_another_site_is_refused(lab):
    log_in(lab, "op")
    tenant = lab.tenants["ASAB_tenant"]
    r = lab.client.post(f"/dashboard/actions/tenants/{tenant}/stop",
                        headers={"Origin": "https://evil.example", "Accept": "application/json"})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    assert lab.get("op", f"/api/v1/tenants/{tenant}").json()["stop_requested"] is False
    r = lab.client.post(f"/dashboard/actions/tenants/{tenant}/stop",
                        headers={"Origin": "http://testserver", "Accept": "application/json"})
    assert r.status_code == 200 and r.json()["ok"] is True
    assert lab.get("op", f"/api/v1/tenants/{tenant}").json()["stop_requested"] is True


def test_controls_go_through_the_services_rules(lab):
    proposal = lab.post("op", "/api/v1/requests", json=flow_request() | {"proposed": True}).json()["uuid"]
    mine = lab.post("alice", "/api/v1/requests", json=flow_request()).json()["uuid"]
    theirs = lab.post("op", "/api/v1/requests", json=flow_request()).json()["uuid"]
    as_json = {"Accept": "application/json"}
    log_in(lab, "alice")
    for path in (f"/dashboard/actions/requests/{proposal}/approve", f"/dashboard/actions/requests/{proposal}/reject",
                 f"/dashboard/actions/tenants/{lab.tenants['ASAB_tenant']}/stop"):
        r = lab.client.post(path, headers=as_json)
        assert r.status_code == 403 and r.json() == {"ok": False, "message": "this needs an operator"}, path
    r = lab.client.post(f"/dashboard/actions/requests/{theirs}/retract", headers=as_json)
    assert r.status_code == 404  # a requester does not even see another's request
    r = lab.client.post(f"/dashboard/actions/requests/{mine}/retract", data={"reason": "wrong volume"},
                        headers=as_json)
    assert r.status_code == 200 and r.json()["ok"] is True
    history = lab.get("alice", f"/api/v1/requests/{mine}/history").json()
    assert (history[-1]["to_status"], history[-1]["actor"], history[-1]["message"]) == \
        ("retracted", "alice", "wrong volume")
    r = lab.client.post(f"/dashboard/actions/requests/{mine}/retract", headers=as_json)
    assert r.status_code == 409 and "already retracted" in r.json()["message"]

    log_in(lab, "op")
    assert lab.client.post(f"/dashboard/actions/requests/{theirs}/reject", headers=as_json).status_code == 409
    r = lab.client.post(f"/dashboard/actions/requests/{proposal}/approve", headers=as_json)
    assert r.status_code == 200 and lab.get("op", f"/api/v1/requests/{proposal}").json()["status"] == "pending"


def test_without_the_script_a_control_returns_to_its_page_with_a_message(lab):
    lab.client.put("/api/v1/campaigns/c1", json={"spec": {"budget": 5}}, headers=lab.headers("op"))
    log_in(lab, "op")
    r = lab.client.post("/dashboard/actions/campaigns/c1/pause",
                        headers={"Referer": "http://testserver/dashboard/campaigns/c1"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/campaigns/c1"
    page = lab.client.get("/dashboard/campaigns/c1")
    assert 'data-testid="notice"' in page.text and "Campaign c1 paused" in page.text
    assert 'data-status="paused"' in page.text
    assert "Campaign c1 paused" not in lab.client.get("/dashboard/campaigns/c1").text  # shown once
    r = lab.client.post("/dashboard/actions/campaigns/c1/resume", headers={"Referer": "https://evil.example/x"},
                        follow_redirects=False)
    assert r.headers["location"] == "/dashboard"


def test_pages_fragments_and_static_files(any_lab):
    lab = any_lab
    lab.post("alice", "/api/v1/requests", json=flow_request())
    log_in(lab, "op")
    for path in PAGES + FRAGMENTS + ("/dashboard/fragments/tenants?compact=1", "/dashboard/queue?q=flow&status=active"):
        r = lab.client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
    r = lab.client.get("/dashboard/queue?status=done")
    assert r.status_code == 422 and "status: unknown status &#39;done&#39;" in r.text
    assert lab.client.get("/dashboard/campaigns/none").status_code == 404
    js = lab.client.get("/dashboard/static/dashboard.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "EventSource" in js.text
    for bad in ("/dashboard/static/routes.py", "/dashboard/static/..%2Froutes.py", "/dashboard/static/.hidden.js"):
        assert lab.client.get(bad).status_code == 404, bad
    described = lab.client.get("/openapi.json").json()["paths"]  # the pages are described as what they are
    assert described["/dashboard/queue"]["get"]["tags"] == ["dashboard"]
    assert "text/html" in described["/dashboard/queue"]["get"]["responses"]["200"]["content"]


@pytest.mark.timeout(60)
def test_the_event_stream_ends_when_the_session_expires(sqlite_url, monkeypatch):
    from labweave.services.server.dashboard import stream

    monkeypatch.setattr(stream, "RECHECK_SECONDS", 0.5)
    lab = open_lab(sqlite_url, token_minutes=3 / 60)  # tokens live three seconds
    try:
        assert log_in(lab, "op").status_code == 303
        seen = []
        with lab.client.stream("GET", "/dashboard/events") as feed:
            assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/event-stream")
            for line in feed.iter_lines():
                seen.append(line)
                if line.startswith("event: session-ended"):
                    break
        assert seen[0] == "retry: 3000" and "event: session-ended" in seen
        # and a new stream is refused until the operator logs in again
        assert lab.client.get("/dashboard/events").status_code == 401
    finally:
        lab.lab.close()

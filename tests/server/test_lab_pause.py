"""An operator pauses the whole lab and resumes it (issue: trust for an unattended night):
tenants stop claiming (a 409 naming the pause, an empty FINALES2 queue), running work finishes
or is released, the state is in the database (a restart, another replica) and in the event log;
the client, the CLI and the dashboard's controls drive it; only an operator may."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from labweave.services.cli.main import app as cli
from labweave.services.client import AsyncLabClient, LabClient, LabPaused
from labweave.services.server.app import create_app

from .helpers import Lab, flow_lab, flow_request, flow_result, settings_for


@pytest.fixture
def lab(database_url):
    lab = flow_lab(database_url)
    lab.url = database_url
    return lab


def post(lab, user: str) -> str:
    return lab.post(user, "/requests/", json=flow_request()).json() if user else ""


def claim(lab, user: str = "asab"):
    return lab.post(user, "/api/v1/claims", json={})


def detail(lab, uuid: str) -> dict:
    return lab.get("op", f"/api/v1/requests/{uuid}").json()


def test_only_an_operator_pauses_and_resumes(lab):
    for user in ("alice", "asab"):
        assert lab.post(user, "/api/v1/lab/pause", json={}).status_code == 403
        assert lab.post(user, "/api/v1/lab/resume").status_code == 403
        assert lab.get(user, "/api/v1/lab").json()["paused"] is False  # everyone may ask
    assert lab.client.post("/api/v1/lab/pause").status_code == 401
    assert lab.client.get("/api/v1/lab").status_code == 401
    r = lab.post("op", "/api/v1/lab/pause", json={"reason": "x" * 2001})
    assert r.status_code == 422 and "reason" in r.text
    assert lab.get("op", "/api/v1/lab").json()["paused"] is False


def test_a_paused_lab_refuses_claims_and_lets_running_work_finish(lab):
    running, waiting = post(lab, "alice"), post(lab, "alice")
    assert claim(lab).json()["request"]["uuid"] == running
    r = lab.post("op", "/api/v1/lab/pause", json={"reason": "glovebox maintenance"})
    assert r.status_code == 200
    state = r.json()
    assert state["paused"] and not state["release_running"] and state["changed_by"] == "op"
    assert state["reason"] == "glovebox maintenance" and state["running"] == 1 and state["released"] == 0
    refused = claim(lab, "asab2")
    assert refused.status_code == 409 and refused.json()["lab"] == "paused"
    assert "paused by operator op" in refused.json()["detail"] and "glovebox maintenance" in refused.json()["detail"]
    assert refused.headers["Retry-After"] == "10"
    reserve = lab.post("asab2", f"/requests/{waiting}/update_status/",
                       params={"request_id": waiting, "new_status": "reserved"})
    assert reserve.status_code == 409 and reserve.json()["lab"] == "paused"
    assert lab.get("asab2", "/pending_requests/").json() == []  # FINALES2 tenants see no work
    assert [r["uuid"] for r in lab.get("op", "/pending_requests/").json()] == [waiting]
    assert post(lab, "alice")  # requests may still be posted
    # the running work finishes: its heartbeat and result are taken
    assert lab.post("asab", f"/api/v1/requests/{running}/heartbeat").status_code == 200
    r = lab.post("asab", "/api/v1/results", json=flow_result(running, lab.tenants["ASAB_tenant"]))
    assert r.status_code == 201 and detail(lab, running)["status"] == "resolved"
    # the pause is in the event log, and every user reads it
    kinds = [e["kind"] for e in lab.get("asab2", "/api/v1/events", params={"kind": "lab.paused"}).json()["items"]]
    assert kinds == ["lab.paused"]
    r = lab.post("op", "/api/v1/lab/resume", json={"reason": "done"})
    assert r.status_code == 200 and r.json()["paused"] is False
    assert claim(lab, "asab2").json()["request"]["uuid"] == waiting
    events = lab.get("op", "/api/v1/events", params={"kind": ["lab.paused", "lab.resumed"]}).json()["items"]
    assert [(e["kind"], e["actor"], e["message"]) for e in events] == [
        ("lab.paused", "op", "glovebox maintenance"), ("lab.resumed", "op", "done")]


def test_pausing_with_release_running_returns_the_work_to_the_queue(lab):
    uuids = [post(lab, "alice") for _ in range(2)]
    assert claim(lab).status_code == 200 and claim(lab, "asab2").status_code == 200
    r = lab.post("op", "/api/v1/lab/pause", json={"release_running": True})
    assert r.json()["released"] == 2 and r.json()["running"] == 0
    for uuid in uuids:
        d = detail(lab, uuid)
        assert d["status"] == "pending" and d["owner_tenant_uuid"] is None and d["lease_expiries"] == 0
        last = lab.get("op", f"/api/v1/requests/{uuid}/history").json()[-1]
        assert (last["from_status"], last["to_status"], last["actor"]) == ("reserved", "pending", "op")
        assert "paused" in last["message"]
    beat = lab.post("asab", f"/api/v1/requests/{uuids[0]}/heartbeat")
    assert beat.status_code == 409 and "lease is lost" in beat.json()["detail"]  # its runtime stops the job
    lab.post("op", "/api/v1/lab/resume")
    assert claim(lab).json()["request"]["uuid"] == uuids[0]


def test_the_pause_outlives_a_restart_and_holds_on_every_replica(lab):
    post(lab, "alice")
    lab.post("op", "/api/v1/lab/pause", json={"reason": "overnight check"})
    other = Lab(TestClient(create_app(settings_for(lab.url))))  # another replica, or the server restarted
    other.tenants = lab.tenants
    other.login("asab")
    other.login("op")
    assert other.get("op", "/api/v1/lab").json()["reason"] == "overnight check"
    assert claim(other).json()["lab"] == "paused"
    other.post("op", "/api/v1/lab/resume")
    assert claim(lab).status_code == 200  # resumed on one replica, resumed on all
    other.lab.close()


def test_the_clients_say_paused_as_its_own_answer(lab):
    post(lab, "alice")

    async def scenario():
        transport = httpx.ASGITransport(app=lab.client.app)
        async with AsyncLabClient("http://lab", "op", "op", transport=transport) as op, \
                AsyncLabClient("http://lab", "asab", "asab", transport=transport) as asab:
            state = await op.pause_lab(reason="calibration")
            assert state.paused and state.reason == "calibration"
            with pytest.raises(LabPaused) as refused:
                await asab.claim()
            assert refused.value.retry_after == 10 and "calibration" in str(refused.value.detail)
            assert (await asab.lab_status()).paused
            assert not (await op.resume_lab()).paused
            assert (await asab.claim()) is not None

    asyncio.run(scenario())
    with LabClient("http://lab", "op", "op", transport=httpx.ASGITransport(app=lab.client.app)) as op:
        assert op.pause_lab(release_running=True).released == 1
        assert op.lab_status().release_running
        assert not op.resume_lab().paused


def test_the_cli_pauses_resumes_and_tells(lab, monkeypatch):
    monkeypatch.setenv("LABWEAVE_DATABASE_URL", lab.url)
    runner = CliRunner()
    post(lab, "alice")
    claim(lab)
    r = runner.invoke(cli, ["lab", "pause", "--release-running", "--reason", "power cut"])
    assert r.exit_code == 0, r.output
    assert "lab paused by cli:" in r.output and "power cut" in r.output and "1 released" in r.output
    assert claim(lab).json()["lab"] == "paused"  # the server reads what the command wrote
    r = runner.invoke(cli, ["lab", "status"])
    assert r.exit_code == 0 and "released to pending" in r.output
    r = runner.invoke(cli, ["lab", "resume"])
    assert r.exit_code == 0 and "lab running (resumed by cli:" in r.output
    assert claim(lab).status_code == 200
    r = runner.invoke(cli, ["lab", "pause", "--reason", "y" * 2001])
    assert r.exit_code == 2 and "--reason" in r.output


def test_the_dashboard_shows_the_pause_and_lets_an_operator_pause_and_resume(lab):
    c = lab.client
    assert c.post("/dashboard/login", data={"username": "op", "password": "op"},
                  follow_redirects=False).status_code == 303
    page = c.get("/dashboard").text
    assert 'data-testid="pause-lab"' in page and 'data-testid="lab-paused"' not in page
    json_answer = {"Accept": "application/json", "Origin": "http://testserver"}
    r = c.post("/dashboard/actions/lab/pause", data={"reason": "dashboard pause"}, headers=json_answer)
    assert r.status_code == 200 and r.json()["ok"]
    banner = c.get("/dashboard/fragments/lab").text
    assert 'data-testid="lab-paused"' in banner and "dashboard pause" in banner and "resume-lab" in banner
    assert 'data-testid="lab-paused"' in c.get("/dashboard/queue").text
    assert claim(lab).json()["lab"] == "paused"
    r = c.post("/dashboard/actions/lab/resume", headers=json_answer)
    assert r.status_code == 200 and r.json()["ok"]
    assert 'data-testid="lab-paused"' not in c.get("/dashboard").text


def test_the_dashboard_shows_a_requester_the_banner_but_no_controls(lab):
    lab.post("op", "/api/v1/lab/pause", json={"reason": "night shift"})
    c = lab.client
    c.post("/dashboard/login", data={"username": "alice", "password": "alice"}, follow_redirects=False)
    page = c.get("/dashboard").text
    assert 'data-testid="lab-paused"' in page and "night shift" in page and "resume-lab" not in page
    r = c.post("/dashboard/actions/lab/resume", headers={"Accept": "application/json", "Origin": "http://testserver"})
    assert r.status_code == 403 and not r.json()["ok"]
    assert lab.get("op", "/api/v1/lab").json()["paused"] is True

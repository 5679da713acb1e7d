"""Campaign records and the emergency stop of a tenant."""

from __future__ import annotations

import pytest

from .helpers import flow_request, open_lab, two_flow_tenants


@pytest.fixture
def lab(sqlite_url):
    lab = open_lab(sqlite_url)
    two_flow_tenants(lab)
    return lab


def test_campaign_lifecycle(lab):
    spec = {"quantity": "electrolyte", "budget": 10}
    r = lab.client.put("/api/v1/campaigns/c1", json={"spec": spec}, headers=lab.headers("alice"))
    assert r.status_code == 200 and r.json()["status"] == "running" and r.json()["created_by"] == "alice"
    state = {"best": {"value": 1.5}, "n_observations": 3}
    assert lab.client.put("/api/v1/campaigns/c1/state", json={"state": state},
                          headers=lab.headers("alice")).json()["state"] == state
    lab.add_user("bob", "requester", flow_request()["tenant_uuid"])
    # bob cannot see alice's campaign: to him it does not exist (404), and its name is taken (409)
    assert lab.client.put("/api/v1/campaigns/c1/state", json={"state": {}}, headers=lab.headers("bob")).status_code == 404
    assert lab.client.put("/api/v1/campaigns/c1", json={"spec": {}}, headers=lab.headers("bob")).status_code == 409
    assert lab.client.put("/api/v1/campaigns/c2", json={"spec": {}}, headers=lab.headers("asab")).status_code == 403
    assert lab.post("op", "/api/v1/campaigns/c1/pause").json()["status"] == "paused"
    lab.post("alice", "/api/v1/requests", json=flow_request() | {"campaign": "c1"})
    got = lab.get("op", "/api/v1/campaigns/c1").json()
    assert got["status"] == "paused" and got["counts"] == {"pending": 1}
    assert lab.post("op", "/api/v1/campaigns/c1/resume").json()["status"] == "running"
    assert [c["name"] for c in lab.get("op", "/api/v1/campaigns").json()] == ["c1"]
    assert lab.get("op", "/api/v1/campaigns/none").status_code == 404


def test_a_stopped_tenant_claims_nothing_until_resumed(lab):
    lab.post("alice", "/requests/", json=flow_request())
    tenant = lab.tenants["ASAB_tenant"]
    assert lab.post("alice", f"/api/v1/tenants/{tenant}/stop").status_code == 403  # a requester stops no tenant
    r = lab.post("op", f"/api/v1/tenants/{tenant}/stop")
    assert r.status_code == 200 and r.json()["stop_requested"] is True
    r = lab.post("asab", "/api/v1/claims", json={})
    assert r.status_code == 409 and "asked to stop" in r.json()["detail"]
    assert lab.post("asab", f"/api/v1/tenants/{tenant}/resume").status_code == 403  # only an operator resets it
    lab.post("op", f"/api/v1/tenants/{tenant}/resume")
    assert lab.post("asab", "/api/v1/claims", json={}).status_code == 200

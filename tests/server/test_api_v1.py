"""labweave's own routes: claims and leases, failures, idempotency, pages, events, health."""

from __future__ import annotations

import json
import re
import time

import pytest

from .helpers import expire_leases, flow_request, flow_result, open_lab, two_flow_tenants


@pytest.fixture
def lab(database_url):
    lab = open_lab(database_url, max_lease_expiries=2, max_attempts=2)
    two_flow_tenants(lab)
    return lab


def create(lab, priority=0, user="alice", **extra):
    body = flow_request() | {"priority": priority} | extra
    r = lab.post(user, "/api/v1/requests", json=body)
    assert r.status_code == 201, r.text
    return r.json()["uuid"]


def test_claims_follow_priority_then_age(lab):
    low, high, later_high = create(lab, 0), create(lab, 5), create(lab, 5)
    got = [lab.post("asab", "/api/v1/claims", json={}).json()["request"]["uuid"] for _ in range(3)]
    assert got == [high, later_high, low]
    assert lab.post("asab", "/api/v1/claims", json={}).status_code == 204


def test_claim_carries_a_lease_that_heartbeats_extend(lab):
    uuid = create(lab)
    claim = lab.post("asab", "/api/v1/claims", json={"lease_seconds": 30}).json()
    assert claim["lease"]["request_uuid"] == uuid and claim["lease"]["lease_seconds"] == 30
    before = claim["lease"]["expires_at"]
    time.sleep(0.01)
    beat = lab.post("asab", f"/api/v1/requests/{uuid}/heartbeat").json()
    assert beat["expires_at"] > before
    assert lab.post("asab2", f"/api/v1/requests/{uuid}/heartbeat").status_code == 409


def test_an_expired_lease_returns_the_request_then_fails_it(lab):
    uuid = create(lab)
    db = lab.lab.db
    for expiry in (1, 2):
        lab.post("asab", "/api/v1/claims", json={"lease_seconds": 1})
        assert expire_leases(db, 2) == 1
        detail = lab.get("op", f"/api/v1/requests/{uuid}").json()
        assert detail["lease_expiries"] == expiry
    assert detail["status"] == "failed" and "lease expired" in detail["failure_reason"]
    assert lab.post("asab", f"/api/v1/requests/{uuid}/heartbeat").status_code == 409


def test_a_late_result_after_expiry_is_kept_if_nobody_else_took_the_request(lab):
    uuid = create(lab)
    lab.post("asab", "/api/v1/claims", json={"lease_seconds": 1})
    expire_leases(lab.lab.db, 2)
    r = lab.post("asab", "/api/v1/results", json=flow_result(uuid, lab.tenants["ASAB_tenant"]))
    assert r.status_code == 201
    assert lab.get("op", f"/api/v1/requests/{uuid}").json()["status"] == "resolved"


def test_a_late_result_after_another_tenant_claimed_is_refused(lab):
    uuid = create(lab)
    lab.post("asab", "/api/v1/claims", json={"lease_seconds": 1})
    expire_leases(lab.lab.db, 2)
    assert lab.post("asab2", "/api/v1/claims", json={}).json()["request"]["uuid"] == uuid
    r = lab.post("asab", "/api/v1/results", json=flow_result(uuid, lab.tenants["ASAB_tenant"]))
    assert r.status_code == 403
    r = lab.post("asab2", "/api/v1/results", json=flow_result(uuid, lab.tenants["ASAB twin"]))
    assert r.status_code == 201


def test_failures_retryable_then_final(lab):
    uuid = create(lab)
    lab.post("asab", "/api/v1/claims", json={})
    r = lab.post("asab", f"/api/v1/requests/{uuid}/fail", json={"reason": "gripper dropped a cell", "retryable": True})
    assert r.json()["status"] == "pending" and r.json()["attempts"] == 1
    lab.post("asab", "/api/v1/claims", json={})
    r = lab.post("asab", f"/api/v1/requests/{uuid}/fail", json={"reason": "again", "retryable": True})
    assert r.json()["status"] == "failed"  # max_attempts = 2
    other = create(lab)
    lab.post("asab", "/api/v1/claims", json={})
    r = lab.post("asab", f"/api/v1/requests/{other}/fail", json={"reason": "cell shorted", "retryable": False})
    assert r.json()["status"] == "failed" and r.json()["failure_reason"] == "cell shorted"
    assert lab.post("asab", f"/api/v1/requests/{other}/fail", json={"reason": "x"}).status_code in (403, 409)


def test_release_and_cancel(lab):
    uuid = create(lab)
    lab.post("asab", "/api/v1/claims", json={})
    assert lab.post("asab", f"/api/v1/requests/{uuid}/release", json={"reason": "shutting down"}).json()["status"] == "pending"
    assert lab.post("asab2", f"/api/v1/requests/{uuid}/cancel").status_code == 403
    assert lab.post("alice", f"/api/v1/requests/{uuid}/cancel", json={"reason": "changed my mind"}).json()["status"] == "retracted"
    assert lab.post("asab", "/api/v1/claims", json={}).status_code == 204


def test_idempotency_key(lab):
    uuid = create(lab)
    lab.post("asab", "/api/v1/claims", json={})
    body = flow_result(uuid, lab.tenants["ASAB_tenant"])
    first = lab.post("asab", "/api/v1/results", json=body, headers={"Idempotency-Key": "k1"})
    again = lab.post("asab", "/api/v1/results", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["uuid"] == again.json()["uuid"]
    other = create(lab)
    reused = lab.post("asab", "/api/v1/results", json=flow_result(other, lab.tenants["ASAB_tenant"]),
                      headers={"Idempotency-Key": "k1"})
    assert reused.status_code == 409


def test_proposals_wait_for_an_operator(lab):
    uuid = create(lab, proposed=True, campaign="c1", provenance={"strategy": "bayesian", "acquisition_value": 0.3})
    assert lab.get("op", f"/api/v1/requests/{uuid}").json()["status"] == "proposed"
    assert lab.post("asab", "/api/v1/claims", json={}).status_code == 204
    assert lab.post("alice", f"/api/v1/requests/{uuid}/approve").status_code == 403
    assert lab.post("op", f"/api/v1/requests/{uuid}/approve").json()["status"] == "pending"
    assert lab.post("asab", "/api/v1/claims", json={}).json()["request"]["provenance"]["strategy"] == "bayesian"


def test_listings_filter_and_page(lab):
    uuids = [create(lab, campaign="a" if i % 2 else "b") for i in range(7)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, "status": "pending"} | ({"cursor": cursor} if cursor else {})
        page = lab.get("op", "/api/v1/requests", params=params).json()
        seen += [r["uuid"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == uuids
    assert len(lab.get("op", "/api/v1/requests", params={"campaign": "a"}).json()["items"]) == 3
    assert lab.get("op", "/api/v1/requests", params={"method": "nope"}).json()["items"] == []
    assert lab.get("op", "/api/v1/requests", params={"limit": 0}).status_code == 422


def test_registration_over_http(lab):
    cap = {"quantity": "hardness", "method": "indenter", "is_active": True,
           "json_schema_specifications": {"type": "object", "properties": {"load": {"type": "number"}}},
           "json_schema_result_output": {"type": "object", "required": ["hv"], "properties": {"hv": {"type": "number"}}}}
    assert lab.post("op", "/api/v1/capabilities", json=cap).status_code == 201
    bad = cap | {"json_schema_specifications": {"type": "nonsense"}}
    r = lab.post("op", "/api/v1/capabilities", json=bad)
    assert r.status_code == 422 and "json_schema_specifications" in r.json()["detail"]
    r = lab.post("op", "/api/v1/tenants", json={"name": "indenter", "limitations": [
        {"quantity": "hardness", "method": "indenter", "limitations": {"load": [{"min": 0, "max": 10}]}}]})
    assert r.status_code == 201
    tenant = r.json()["tenant_uuid"]
    r = lab.post("op", "/api/v1/tenants", json={"name": "x", "limitations": [{"quantity": "q", "method": "m"}]})
    assert r.status_code == 422 and "no capability q/m" in r.json()["detail"]
    r = lab.post("op", "/api/v1/users", json={"username": "ind", "password": "ind", "role": "tenant"})
    assert r.status_code == 422 and "password" in str(r.json()["detail"])
    r = lab.post("op", "/api/v1/users", json={"username": "ind", "password": "indent", "role": "tenant",
                                             "tenant_uuid": tenant})
    assert r.status_code == 201
    lab.login("ind", "indent")
    limits = [{"quantity": "hardness", "method": "indenter", "limitations": {"load": [{"min": 0, "max": 5}]}}]
    assert lab.client.put(f"/api/v1/tenants/{tenant}/limitations", json=limits, headers=lab.headers("ind")).status_code == 200
    other = lab.tenants["ASAB_tenant"]
    assert lab.client.put(f"/api/v1/tenants/{other}/limitations", json=limits, headers=lab.headers("ind")).status_code == 403
    body = {"quantity": "hardness", "methods": ["indenter"], "parameters": {"indenter": {"load": 7}},
            "tenant_uuid": flow_request()["tenant_uuid"]}
    assert lab.post("alice", "/requests/", json=body).status_code == 422  # 7 > 5 now


def test_event_page_and_stream(lab):
    uuid = create(lab)
    events = lab.get("op", "/api/v1/events").json()["items"]
    assert any(e["subject"] == uuid and e["to_status"] == "pending" for e in events)
    cursor = events[-1]["id"]
    lab.post("asab", "/api/v1/claims", json={})
    with lab.client.stream("GET", "/api/v1/events/stream", params={"after": cursor},
                           headers=lab.headers("op")) as stream:
        lines = []
        for line in stream.iter_lines():
            lines.append(line)
            if line.startswith("data:"):
                break
    event = json.loads(lines[-1][5:])
    assert event["subject"] == uuid and event["to_status"] == "reserved"
    assert any(line.startswith("id: ") for line in lines)


def test_every_status_change_of_a_campaigns_request_names_the_campaign(lab):
    """An optimizer daemon wakes on its campaign's events: a claim, a release, a failure name it too."""
    uuid = create(lab, campaign="films")
    claim = lab.post("asab", "/api/v1/claims", json={}).json()
    assert claim["request"]["uuid"] == uuid
    assert lab.post("asab", f"/api/v1/requests/{uuid}/release", json={"reason": "channel busy"}).status_code == 200
    lab.post("asab", "/api/v1/claims", json={})
    assert lab.post("asab", f"/api/v1/requests/{uuid}/fail",
                    json={"reason": "pump jammed", "retryable": False}).status_code == 200
    events = [e for e in lab.get("op", "/api/v1/events").json()["items"] if e["subject"] == uuid]
    assert [e["to_status"] for e in events] == ["pending", "reserved", "pending", "reserved", "failed"]
    assert all(e["data"]["campaign"] == "films" for e in events)


def test_health_and_metrics(lab):
    assert lab.client.get("/healthz").json()["status"] == "ok"
    create(lab)
    text = lab.client.get("/metrics").text
    assert 'labweave_requests{quantity="electrolyte",status="pending"} 1.0' in text
    assert re.search(r'labweave_oldest_pending_seconds\{quantity="electrolyte"\} \d', text)
    assert "labweave_tenants" in text

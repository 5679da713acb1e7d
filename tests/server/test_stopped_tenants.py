"""A tenant an operator stopped or deactivated cannot claim, heartbeat or post new
results; what the server already acknowledged is acknowledged again; idempotency
keys belong to the tenant that used them."""

from __future__ import annotations

import pytest

from .helpers import flow_lab, flow_request, flow_result


@pytest.fixture
def lab(database_url):
    return flow_lab(database_url)


def held_request(lab) -> str:
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    assert lab.post("asab", "/api/v1/claims", json={}).json()["request"]["uuid"] == uuid
    return uuid


@pytest.mark.parametrize("action", ["stop", "deactivate"])
def test_a_stopped_or_deactivated_tenant_cannot_heartbeat_or_post(lab, action):
    tenant = lab.tenants["ASAB_tenant"]
    uuid = held_request(lab)
    done = held_request(lab)
    key = f"{tenant}:{done}"
    body = flow_result(done, tenant)
    assert lab.post("asab", "/api/v1/results", json=body, headers={"Idempotency-Key": key}).status_code == 201
    assert lab.post("op", f"/api/v1/tenants/{tenant}/{action}").status_code == 200

    r = lab.post("asab", f"/api/v1/requests/{uuid}/heartbeat")
    assert r.status_code == 409 and ("stop" in r.text or "not active" in r.text), r.text
    r = lab.post("asab", "/api/v1/results", json=flow_result(uuid, tenant))
    assert r.status_code == 409, r.text
    assert lab.post("asab", "/results/", json=flow_result(uuid, tenant)).status_code == 409
    r = lab.post("asab", "/results/post_unsolicited_result", json=flow_result("", tenant))
    assert r.status_code == 409, r.text
    assert lab.post("asab", "/api/v1/claims", json={}).status_code == 409
    # the result the server acknowledged before the stop is acknowledged again (an outbox retry)
    again = lab.post("asab", "/api/v1/results", json=body, headers={"Idempotency-Key": key})
    assert again.status_code in (200, 201), again.text
    assert lab.get("op", f"/api/v1/requests/{uuid}").json()["status"] in ("reserved", "pending")


def test_idempotency_keys_belong_to_their_tenant(lab):
    uuid = held_request(lab)
    body = flow_result(uuid, lab.tenants["ASAB_tenant"])
    first = lab.post("asab", "/api/v1/results", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    other = flow_result(uuid, lab.tenants["ASAB twin"])
    r = lab.post("asab2", "/api/v1/results", json=other, headers={"Idempotency-Key": "k-1"})
    assert r.status_code == 409 and "your own" in r.text, r.text
    assert "data" not in r.json()

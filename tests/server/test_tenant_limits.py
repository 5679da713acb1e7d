"""Only an operator says what a tenant may offer and whether it is active: a tenant
narrows its limits, never widens them, never grants itself a capability, never
turns itself back on (issue: trust for an unattended night)."""

from __future__ import annotations

import copy

import pytest

from .helpers import flow_lab, flow_request


@pytest.fixture
def lab(database_url):
    return flow_lab(database_url)


def limitations(lab, tenant: str) -> list[dict]:
    return lab.get("op", f"/api/v1/tenants/{lab.tenants[tenant]}").json()["limitations"]


def put_limitations(lab, user: str, tenant: str, entries: list[dict]):
    return lab.client.put(f"/api/v1/tenants/{lab.tenants[tenant]}/limitations", json=entries,
                          headers=lab.headers(user))


def with_flow_volume(entries: list[dict], volume: dict) -> list[dict]:
    out = copy.deepcopy(entries)
    for entry in out:
        if (entry["quantity"], entry["method"]) == ("electrolyte", "flow"):
            entry["limitations"]["volume"] = [volume]
    return out


def claim(lab, user: str):
    return lab.post(user, "/api/v1/claims", json={"quantity": "electrolyte"})


def test_a_tenant_cannot_offer_itself_a_capability_it_was_not_granted(lab):
    mine = limitations(lab, "ASAB_tenant")
    granted = {(e["quantity"], e["method"]) for e in mine}
    other = next(c for c in lab.get("op", "/api/v1/capabilities").json()
                 if (c["quantity"], c["method"]) not in granted)
    extra = mine + [{"quantity": other["quantity"], "method": other["method"], "limitations": {}}]
    r = put_limitations(lab, "asab", "ASAB_tenant", extra)
    assert r.status_code == 403, r.text
    assert f"{other['quantity']}/{other['method']}" in r.json()["detail"]
    assert limitations(lab, "ASAB_tenant") == mine
    # an operator may grant it
    assert put_limitations(lab, "op", "ASAB_tenant", extra).status_code == 200
    assert put_limitations(lab, "asab", "ASAB_tenant", extra).status_code == 200


def test_a_deactivated_tenant_stays_deactivated_when_its_runtime_republishes(lab):
    tenant = lab.tenants["ASAB_tenant"]
    assert lab.post("op", f"/api/v1/tenants/{tenant}/deactivate").status_code == 200
    r = put_limitations(lab, "asab", "ASAB_tenant", limitations(lab, "ASAB_tenant"))
    assert r.status_code == 200 and r.json()["is_active"] is False, r.text
    assert lab.get("op", f"/api/v1/tenants/{tenant}").json()["is_active"] is False
    lab.post("alice", "/requests/", json=flow_request())
    assert claim(lab, "asab").status_code != 200
    assert claim(lab, "asab2").status_code == 200


def test_a_tenant_narrows_its_limits_but_cannot_widen_them(lab):
    granted = with_flow_volume(limitations(lab, "ASAB_tenant"), {"min": 0.0, "max": 3.0})
    assert put_limitations(lab, "op", "ASAB_tenant", granted).status_code == 200
    # widening is stored as the tenant's word, but the operator's envelope still holds
    wide = with_flow_volume(granted, {"min": 0.0, "max": 100.0})
    assert put_limitations(lab, "asab", "ASAB_tenant", wide).status_code == 200
    big = flow_request()
    big["parameters"]["flow"]["volume"] = 50.0
    big_uuid = lab.post("alice", "/requests/", json=big).json()  # the twin has no volume limit
    assert claim(lab, "asab").status_code == 204
    pending = [r["uuid"] for r in lab.get("asab", "/pending_requests/").json()]
    assert big_uuid not in pending
    assert claim(lab, "asab2").json()["request"]["uuid"] == big_uuid
    # narrowing takes effect: 2.6 is inside the grant but outside the tenant's own word
    narrow = with_flow_volume(granted, {"min": 0.0, "max": 2.0})
    assert put_limitations(lab, "asab", "ASAB_tenant", narrow).status_code == 200
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    assert claim(lab, "asab").status_code == 204
    assert claim(lab, "asab2").json()["request"]["uuid"] == uuid

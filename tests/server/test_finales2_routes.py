"""The shape of every FINALES2 route, as a FINALES2 tenant or client sees it."""

from __future__ import annotations

import pytest

from labweave.schemas.core import RequestInfo, ResultInfo

from .helpers import REQUESTER_TENANT, flow_request, flow_result, open_lab, two_flow_tenants


@pytest.fixture
def lab(database_url):
    lab = open_lab(database_url)
    two_flow_tenants(lab)
    return lab


def test_login_with_and_without_trailing_slash(lab):
    for path in ("/user_management/authenticate", "/user_management/authenticate/"):
        r = lab.client.post(path, data={"username": "op", "password": "op", "grant_type": "password"})
        assert r.status_code == 200
        assert r.json()["token_type"] == "bearer" and r.json()["access_token"].count(".") == 2
    r = lab.client.post("/user_management/authenticate", data={"username": "op", "password": "wrong"})
    assert r.status_code == 401


def test_every_route_needs_a_token(lab):
    for path in ("/all_requests/", "/pending_requests/", "/capabilities/", "/limitations/", "/tenants/",
                 "/results_requested/", "/capabilities/templates/"):
        assert lab.client.get(path).status_code == 401
        assert lab.client.get(path, headers={"Authorization": "Bearer not.a.token"}).status_code == 401


def test_request_round_trip(lab):
    r = lab.post("alice", "/requests/", json=flow_request())
    assert r.status_code == 200
    uuid = r.json()
    assert isinstance(uuid, str)
    info = RequestInfo.model_validate(lab.get("alice", f"/requests/{uuid}").json())
    assert info.status == "pending" and info.request.quantity == "electrolyte"
    pending = lab.get("asab", "/pending_requests/", params={"quantity": "electrolyte", "method": "flow"}).json()
    assert [p["uuid"] for p in pending] == [uuid]
    assert lab.get("asab", "/pending_requests/", params={"quantity": "capacity"}).json() == []
    assert [r["uuid"] for r in lab.get("op", "/all_requests/").json()] == [uuid]


def test_unknown_ids_answer_null(lab):
    for path in ("/requests/nope", "/results/nope", "/results_requested/nope"):
        r = lab.get("op", path)
        assert r.status_code == 200 and r.json() is None


def test_update_status_reads_request_id_query(lab):
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    r = lab.post("asab", "/requests/ignored/update_status/",
                 params={"request_id": uuid, "new_status": "reserved", "status_change_message": "mine"})
    assert r.status_code == 200 and r.json() == "Successful change of status to reserved"
    assert lab.get("op", f"/requests/{uuid}").json()["status"] == "reserved"
    r = lab.post("asab", f"/requests/{uuid}/update_status/", params={"new_status": "pending"})
    assert r.status_code == 422  # request_id is required, as in FINALES2


def test_result_round_trip(lab):
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    lab.post("asab", f"/requests/{uuid}/update_status/", params={"request_id": uuid, "new_status": "reserved"})
    tenant = lab.tenants["ASAB_tenant"]
    r = lab.post("asab", "/results/", json=flow_result(uuid, tenant))
    assert r.status_code == 200, r.text
    result_uuid = r.json()
    info = ResultInfo.model_validate(lab.get("alice", f"/results/{result_uuid}").json())
    assert info.status == "original" and info.result.request_uuid == uuid
    assert lab.get("alice", f"/results_requested/{uuid}").json()["uuid"] == result_uuid
    listed = lab.get("alice", "/results_requested/", params={"quantity": "electrolyte", "method": "flow"}).json()
    assert [x["uuid"] for x in listed] == [result_uuid]
    assert lab.get("alice", f"/requests/{uuid}").json()["status"] == "resolved"
    r = lab.post("asab", f"/results/{result_uuid}/update_status/",
                 params={"result_id": result_uuid, "new_status": "amended", "status_change_message": "recalibrated"})
    assert r.status_code == 200
    assert lab.get("alice", f"/results/{result_uuid}").json()["status"] == "amended"


def test_unsolicited_result(lab):
    body = flow_result("", lab.tenants["ASAB_tenant"])
    r = lab.post("asab", "/results/post_unsolicited_result", json=body)
    assert r.status_code == 200, r.text
    result = lab.get("op", f"/results/{r.json()}").json()
    request = lab.get("op", f"/requests/{result['result']['request_uuid']}").json()
    assert request["status"] == "unsolicited" and request["request"]["methods"] == ["flow"]


def test_capabilities_templates_limitations_tenants(lab):
    caps = lab.get("op", "/capabilities/").json()
    offered = {(c["quantity"], c["method"]) for c in caps}
    assert ("electrolyte", "flow") in offered and ("density", "molecular_dynamics") not in offered
    assert set(caps[0]) == {"quantity", "method", "json_schema_specifications", "json_schema_result_output"}
    everything = lab.get("op", "/capabilities/", params={"currently_available": False}).json()
    assert ("density", "molecular_dynamics") in {(c["quantity"], c["method"]) for c in everything}
    templates = lab.get("op", "/capabilities/templates/", params={"quantity": "electrolyte"}).json()
    assert list(templates) == ["electrolyte-flow"]
    assert templates["electrolyte-flow"]["input_template"]["volume"].endswith("float")
    assert "output_template" in templates["electrolyte-flow"]
    limits = {(x["quantity"], x["method"]): x["limitations"] for x in lab.get("op", "/limitations/").json()}
    # two tenants offer electrolyte/flow: both their limitations are there, merged as alternatives
    assert len(limits[("electrolyte", "flow")]) == 2
    tenants = lab.get("op", "/tenants/").json()
    assert {"tenant_uuid", "name", "limitations", "contact_person", "is_active"} <= set(tenants[0])
    assert REQUESTER_TENANT in {t["tenant_uuid"] for t in tenants}

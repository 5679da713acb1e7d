"""What FINALES2 gets wrong, and labweave does right (see shared/finales2/API.md)."""

from __future__ import annotations

import copy

import pytest

from .helpers import flow_request, flow_result, open_lab, two_flow_tenants


@pytest.fixture
def lab(database_url):
    lab = open_lab(database_url)
    two_flow_tenants(lab)
    return lab


def reserve(lab, user, uuid):
    return lab.post(user, f"/requests/{uuid}/update_status/", params={"request_id": uuid, "new_status": "reserved"})


def test_second_reservation_is_refused(lab):
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    assert reserve(lab, "asab", uuid).status_code == 200
    r = reserve(lab, "asab2", uuid)
    assert r.status_code == 409 and "reserved" in r.json()["detail"]
    assert lab.get("op", f"/api/v1/requests/{uuid}").json()["owner_tenant_uuid"] == lab.tenants["ASAB_tenant"]


def test_only_the_owner_or_an_operator_releases(lab):
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    reserve(lab, "asab", uuid)
    release = {"request_id": uuid, "new_status": "pending"}
    assert lab.post("asab2", f"/requests/{uuid}/update_status/", params=release).status_code == 403
    assert lab.post("asab", f"/requests/{uuid}/update_status/", params=release).status_code == 200
    reserve(lab, "asab2", uuid)
    assert lab.post("op", f"/requests/{uuid}/update_status/", params=release).status_code == 200


def test_a_resolved_request_stays_resolved(lab):
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    reserve(lab, "asab", uuid)
    assert lab.post("asab", "/results/", json=flow_result(uuid, lab.tenants["ASAB_tenant"])).status_code == 200
    for status in ("pending", "reserved", "retracted"):
        r = lab.post("op", f"/requests/{uuid}/update_status/", params={"request_id": uuid, "new_status": status})
        assert r.status_code in (403, 409), status
    other = flow_result(uuid, lab.tenants["ASAB twin"])
    assert lab.post("asab2", "/results/", json=other).status_code == 409
    assert lab.get("op", f"/requests/{uuid}").json()["status"] == "resolved"
    assert len(lab.get("op", "/api/v1/results", params={"request_uuid": uuid}).json()["items"]) == 1


def test_the_same_result_posted_twice_is_stored_once(lab):
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    reserve(lab, "asab", uuid)
    body = flow_result(uuid, lab.tenants["ASAB_tenant"])
    first = lab.post("asab", "/results/", json=body).json()
    assert lab.post("asab", "/results/", json=body).json() == first  # a retry after a lost answer


def test_result_data_is_validated_against_the_output_schema(lab):
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    reserve(lab, "asab", uuid)
    body = flow_result(uuid, lab.tenants["ASAB_tenant"])
    bad = copy.deepcopy(body)
    bad["data"]["run_info"]["formulation"] = "a lot"
    r = lab.post("asab", "/results/", json=bad)
    assert r.status_code == 422 and r.json()["detail"].startswith("data.run_info.formulation")
    assert lab.get("op", f"/requests/{uuid}").json()["status"] == "reserved"  # nothing lost
    assert lab.post("asab", "/results/", json=body).status_code == 200


def conductivity_request(ec: float) -> dict:
    chem = {"EC": ("C1COC(=O)O1", "KMTRUDSVKNLOMY-UHFFFAOYSA-N"), "LiPF6": ("[Li+].F[P-](F)(F)(F)(F)F",
            "AXPLOJNSKRXQPA-UHFFFAOYSA-N"), "EMC": ("CCOC(=O)OC", "JBTWLSYIZRCDFO-UHFFFAOYSA-N")}
    fractions = {"EC": ec, "LiPF6": 0.1, "EMC": round(0.9 - ec, 6)}
    formulation = [{"chemical": {"SMILES": chem[k][0], "InChIKey": chem[k][1]}, "fraction": f,
                    "fraction_type": "molPerMol"} for k, f in fractions.items()]
    return {"quantity": "conductivity", "methods": ["two_electrode"],
            "parameters": {"two_electrode": {"formulation": formulation, "temperature": 301.15}},
            "tenant_uuid": flow_request()["tenant_uuid"]}


def test_a_request_outside_every_tenants_limits_is_refused(lab):
    assert lab.post("alice", "/requests/", json=conductivity_request(0.3)).status_code == 200
    r = lab.post("alice", "/requests/", json=conductivity_request(0.9))
    assert r.status_code == 422
    assert "parameters.two_electrode.formulation[0].fraction: 0.9 is above the maximum 0.542" in r.json()["detail"]
    assert len(lab.get("op", "/all_requests/").json()) == 1


def test_no_tenant_is_handed_a_request_outside_its_own_limits(lab):
    narrow = lab.add_tenant({
        "name": "narrow",
        "limitations": [{"quantity": "electrolyte", "method": "flow",
                         "limitations": {"volume": [{"min": 0, "max": 1}]}}],
    })
    lab.add_user("narrow-user", "tenant", narrow)
    body = flow_request()
    assert body["parameters"]["flow"]["volume"] > 1
    uuid = lab.post("alice", "/requests/", json=body).json()
    assert lab.get("narrow-user", "/pending_requests/").json() == []
    assert lab.post("narrow-user", "/api/v1/claims", json={}).status_code == 204
    assert reserve(lab, "narrow-user", uuid).status_code == 403
    assert [p["uuid"] for p in lab.get("asab", "/pending_requests/").json()] == [uuid]


def test_a_request_naming_several_methods_works(lab):
    body = {
        "quantity": "conductivity",
        "methods": ["two_electrode", "polynomial_interpolation"],
        "parameters": {
            "two_electrode": {"formulation": flow_request()["parameters"]["flow"]["electrolyte"]["formulation"],
                              "temperature": 301.15},
            "polynomial_interpolation": {
                "formulation": flow_request()["parameters"]["flow"]["electrolyte"]["formulation"],
                "temperature": 301.15},
        },
        "tenant_uuid": flow_request()["tenant_uuid"],
    }
    r = lab.post("alice", "/requests/", json=body)
    assert r.status_code == 200, r.text
    claim = lab.post("asab", "/api/v1/claims", json={})
    assert claim.status_code == 200 and claim.json()["request"]["uuid"] == r.json()


@pytest.mark.parametrize(
    "change, status, message",
    [
        (lambda b: b.update(tenant_uuid="no-such-tenant"), 422, "tenant_uuid: unknown tenant"),
        (lambda b: b.update(quantity="happiness"), 422, "quantity: unknown quantity"),
        (lambda b: b.update(methods=["teleport"], parameters={"teleport": {}}), 422, "unknown method"),
        (lambda b: b.update(methods=[]), 422, "methods"),
        (lambda b: b["parameters"].update(other={}), 422, "not in methods"),
        (lambda b: b["parameters"]["flow"].update(volume="ten"), 422, "parameters.flow.volume"),
        (lambda b: b["parameters"]["flow"]["electrolyte"]["formulation"][0].pop("chemical"), 422,
         "parameters.flow.electrolyte.formulation[0]"),
        (lambda b: b.pop("quantity"), 422, "quantity"),
    ],
    ids=["tenant", "quantity", "method", "no-method", "extra-parameters", "type", "nested", "missing"],
)
def test_bad_requests_get_a_4xx_naming_the_field(lab, change, status, message):
    body = flow_request()
    change(body)
    r = lab.post("alice", "/requests/", json=body)
    assert r.status_code == status, r.text
    assert message in str(r.json()["detail"])


def test_malformed_bodies_are_422_not_500(lab):
    for raw in ("not json", "[]", '{"quantity": 1}', "null"):
        r = lab.client.post("/requests/", content=raw, headers=lab.headers("alice") | {"Content-Type": "application/json"})
        assert r.status_code == 422
    r = lab.post("asab", "/results/", json={"data": {}, "quantity": "electrolyte", "method": ["flow", "x"],
                                          "parameters": {}, "tenant_uuid": "x", "request_uuid": "y"})
    assert r.status_code == 422


def test_roles(lab):
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    lab.add_user("bob", "requester", flow_request()["tenant_uuid"])
    assert lab.get("bob", f"/requests/{uuid}").json() is None  # requesters see their own
    assert lab.get("bob", "/all_requests/").json() == []
    r = lab.post("bob", f"/requests/{uuid}/update_status/", params={"request_id": uuid, "new_status": "retracted"})
    assert r.status_code == 404
    # a tenant user acts only for its own tenant
    body = flow_request() | {"tenant_uuid": lab.tenants["ASAB twin"]}
    assert lab.post("asab", "/requests/", json=body).status_code == 403
    result = flow_result(uuid, lab.tenants["ASAB twin"])
    reserve(lab, "asab", uuid)
    assert lab.post("asab", "/results/", json=result).status_code == 403
    # operators only: registration
    assert lab.post("alice", "/api/v1/tenants", json={"name": "x", "limitations": []}).status_code == 403
    assert lab.post("asab", "/api/v1/users", json={"username": "z", "password": "zzzz", "role": "operator"}).status_code == 403
    # the requester retracts its own
    r = lab.post("alice", f"/requests/{uuid}/update_status/", params={"request_id": uuid, "new_status": "retracted"})
    assert r.status_code == 200


def test_every_status_change_is_logged(lab):
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    reserve(lab, "asab", uuid)
    lab.post("asab", "/results/", json=flow_result(uuid, lab.tenants["ASAB_tenant"]))
    history = lab.get("alice", f"/api/v1/requests/{uuid}/history").json()
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in history] == [
        (None, "pending", "alice"), ("pending", "reserved", "asab"), ("reserved", "resolved", "asab")]
    assert all(h["time"] for h in history)

"""FINALES2's unpaged listings (``/pending_requests/``, ``/all_requests/``) answer JSON assembled
from each request's stored text: what they send must be what the models would send, and a
tenant's listing must follow its limitations as they change (the verdicts it remembers with them)."""

from __future__ import annotations

import copy

import pytest
from pydantic import TypeAdapter
from sqlalchemy import update

from labweave.schemas.core import RequestInfo
from labweave.services.server import convert
from labweave.services.server.db.tables import Request, table_of

from .helpers import flow_lab, flow_request

INFOS = TypeAdapter(list[RequestInfo])


@pytest.fixture
def lab(database_url):
    return flow_lab(database_url)


def model_answer(lab, uuids: list[str]) -> list[dict]:
    """The requests as the model-built routes send them (``GET /requests/{id}``)."""
    return [lab.get("op", f"/requests/{u}").json() for u in uuids]


def with_volume(volume: float, name: str = "") -> dict:
    body = flow_request()
    body["parameters"]["flow"]["volume"] = volume
    if name:  # text beyond ASCII goes through as the models send it
        body["parameters"]["flow"]["electrolyte"]["formulation"][0]["chemical"]["name"] = name
    return body


def flow_volume(lab, tenant: str, volume: dict) -> None:
    entries = copy.deepcopy(lab.get("op", f"/api/v1/tenants/{lab.tenants[tenant]}").json()["limitations"])
    for entry in entries:
        if (entry["quantity"], entry["method"]) == ("electrolyte", "flow"):
            entry["limitations"]["volume"] = [volume]
    r = lab.client.put(f"/api/v1/tenants/{lab.tenants[tenant]}/limitations", json=entries, headers=lab.headers("op"))
    assert r.status_code == 200, r.text


def test_listings_send_what_the_models_send(lab):
    uuids = [lab.post("alice", "/requests/", json=with_volume(v, "carbonate de diméthyle µ")).json()
             for v in (1.0, 2.0)]
    urgent = lab.post("alice", "/api/v1/requests", json=with_volume(3.0) | {"priority": 5}).json()["uuid"]
    lab.post("op", f"/requests/{uuids[0]}/update_status/",
             params={"request_id": uuids[0], "new_status": "retracted"})
    everything = lab.get("op", "/all_requests/")
    assert everything.headers["content-type"] == "application/json"
    assert everything.json() == model_answer(lab, uuids + [urgent])
    INFOS.validate_json(everything.content)  # and it parses as the published model
    pending = lab.get("asab", "/pending_requests/").json()
    assert pending == model_answer(lab, [urgent, uuids[1]])  # queue order: priority, then age
    assert lab.get("alice", "/all_requests/").json() == model_answer(lab, uuids + [urgent])
    assert lab.get("asab", "/pending_requests/", params={"quantity": "electrolyte", "method": "flow"}).json() == pending
    assert lab.get("asab", "/pending_requests/", params={"method": "nothing"}).json() == []


def test_a_tenants_listing_follows_its_limitations(lab):
    small, big = (lab.post("alice", "/requests/", json=with_volume(v)).json() for v in (1.0, 5.0))
    flow_volume(lab, "ASAB_tenant", {"min": 0.0, "max": 2.0})
    for _ in range(2):  # the second listing answers from the verdicts the first one reached
        assert [r["uuid"] for r in lab.get("asab", "/pending_requests/").json()] == [small]
    assert [r["uuid"] for r in lab.get("asab2", "/pending_requests/").json()] == [small, big]
    flow_volume(lab, "ASAB_tenant", {"min": 0.0, "max": 10.0})  # new terms: the verdicts are reached again
    assert [r["uuid"] for r in lab.get("asab", "/pending_requests/").json()] == [small, big]
    flow_volume(lab, "ASAB_tenant", {"min": 3.0, "max": 10.0})
    assert [r["uuid"] for r in lab.get("asab", "/pending_requests/").json()] == [big]
    lab.post("asab", f"/requests/{big}/update_status/", params={"request_id": big, "new_status": "reserved"})
    assert lab.get("asab", "/pending_requests/").json() == []
    assert [r["uuid"] for r in lab.get("op", "/pending_requests/").json()] == [small]


def test_a_request_stored_without_its_wire_text_still_lists(lab):
    uuid = lab.post("alice", "/requests/", json=with_volume(1.5)).json()
    with lab.lab.db.write.begin() as conn:
        conn.execute(update(table_of(Request)).values(wire=None))
    assert lab.get("op", "/all_requests/").json() == model_answer(lab, [uuid])
    assert [r["uuid"] for r in lab.get("asab", "/pending_requests/").json()] == [uuid]


def test_wire_text_of_a_request_is_its_info_but_the_status():
    row = Request(id=1, uuid="u-1", ctime=1764822739.5, updated=0, status="pending", quantity="q", methods=["m"],
                  parameters={"m": {"x": 1.25, "name": "é"}}, tenant_uuid="t")
    wire = convert.request_wire(row.uuid, row.ctime, row.quantity, row.methods, row.parameters, row.tenant_uuid)
    sent = INFOS.validate_json(convert.request_infos_json([("pending", wire), ("reserved", wire)]))
    model = convert.request_info(row)
    assert sent[0] == model and sent[1] == model.model_copy(update={"status": "reserved"})

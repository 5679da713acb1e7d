"""One visibility rule across roles: requests, results, events and campaigns, in every listing and read."""

from __future__ import annotations

import json

import pytest

from labweave.services.server import event_stream
from labweave.services.server.auth import Principal

from .helpers import flow_request, flow_result, open_lab, two_flow_tenants


@pytest.fixture
def lab(database_url):
    """alice's request (claimed and resolved by ASAB) in campaign c1, bob's pending one in c2."""
    lab = open_lab(database_url)
    two_flow_tenants(lab)
    lab.add_user("bob", "requester", flow_request()["tenant_uuid"])
    lab.add_user("aiida", "tenant", "aiida-finales")  # conductivity by molecular dynamics only
    for user, name in (("alice", "c1"), ("bob", "c2")):
        assert lab.client.put(f"/api/v1/campaigns/{name}", json={"spec": {}}, headers=lab.headers(user)).status_code == 200
    lab.mine = lab.post("alice", "/api/v1/requests", json=flow_request() | {"campaign": "c1"}).json()["uuid"]
    lab.bobs = lab.post("bob", "/api/v1/requests", json=flow_request() | {"campaign": "c2", "priority": -1}).json()["uuid"]
    assert lab.post("asab", "/api/v1/claims", json={}).json()["request"]["uuid"] == lab.mine
    lab.result = lab.post("asab", "/api/v1/results", json=flow_result(lab.mine, lab.tenants["ASAB_tenant"])).json()["uuid"]
    return lab


# Who sees which of: alice's request (resolved), bob's request (pending); and campaigns c1, c2.
SEES = {
    "op": ({"mine", "bobs"}, {"c1", "c2"}),
    "alice": ({"mine"}, {"c1"}),
    "bob": ({"bobs"}, {"c2"}),
    "asab": ({"mine", "bobs"}, {"c1", "c2"}),  # both are in its line of work; it resolved alice's
    "asab2": ({"mine", "bobs"}, {"c1", "c2"}),  # its line of work too
    "aiida": (set(), set()),  # another line of work
}
USERS = list(SEES)


def names(lab, uuids) -> set[str]:
    by_uuid = {lab.mine: "mine", lab.bobs: "bobs"}
    return {by_uuid[u] for u in uuids if u in by_uuid}


@pytest.mark.parametrize("user", USERS)
def test_request_listings_and_reads(lab, user):
    requests, _ = SEES[user]
    assert names(lab, [r["uuid"] for r in lab.get(user, "/api/v1/requests").json()["items"]]) == requests
    assert names(lab, [r["uuid"] for r in lab.get(user, "/all_requests/").json()]) == requests
    for name, uuid in (("mine", lab.mine), ("bobs", lab.bobs)):
        assert (lab.get(user, f"/api/v1/requests/{uuid}").status_code == 200) == (name in requests)
        assert (lab.get(user, f"/requests/{uuid}").json() is not None) == (name in requests)
        assert (lab.get(user, f"/api/v1/requests/{uuid}/history").status_code == 200) == (name in requests)


@pytest.mark.parametrize("user", USERS)
def test_results_are_seen_with_their_request(lab, user):
    sees = "mine" in SEES[user][0]
    assert [r["uuid"] for r in lab.get(user, "/api/v1/results").json()["items"]] == ([lab.result] if sees else [])
    assert [r["uuid"] for r in lab.get(user, "/results_requested/").json()] == ([lab.result] if sees else [])
    assert (lab.get(user, f"/api/v1/results/{lab.result}").status_code == 200) == sees
    assert (lab.get(user, f"/results/{lab.result}").json() is not None) == sees
    assert (lab.get(user, f"/results_requested/{lab.mine}").json() is not None) == sees


@pytest.mark.parametrize("user", USERS)
def test_campaign_listings_and_reads(lab, user):
    _, campaigns = SEES[user]
    assert {c["name"] for c in lab.get(user, "/api/v1/campaigns").json()} == campaigns
    for name in ("c1", "c2"):
        assert (lab.get(user, f"/api/v1/campaigns/{name}").status_code == 200) == (name in campaigns)


def subjects(lab, events) -> set[str]:
    names_of = {lab.mine: "mine", lab.bobs: "bobs", lab.result: "result", "c1": "c1", "c2": "c2"}
    return {names_of.get(e["subject"], e["kind"].split(".")[0]) for e in events}


@pytest.mark.parametrize("user", USERS)
def test_events_are_seen_with_their_subject(lab, user):
    requests, campaigns = SEES[user]
    expected = requests | campaigns | ({"result"} if "mine" in requests else set()) | {"tenant", "capability"}
    events = lab.get(user, "/api/v1/events", params={"limit": 1000}).json()["items"]
    assert subjects(lab, events) == expected
    # the event stream's filter of events already read agrees with the listing's query
    everything = event_stream.page(lab.lab, 0, 1000)
    principal = lab.lab.auth.principal(lab.tokens[user])
    assert [e["id"] for e in event_stream.visible(lab.lab, principal, everything)] == [e["id"] for e in events]


def test_the_event_stream_sends_only_what_its_reader_sees(lab):
    alices = lab.post("alice", "/api/v1/requests", json=flow_request()).json()["uuid"]
    last = lab.post("bob", "/api/v1/requests", json=flow_request()).json()["uuid"]
    seen = []
    with lab.client.stream("GET", "/api/v1/events/stream", params={"after": 0}, headers=lab.headers("bob")) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line[5:])["subject"])
                if seen[-1] == last:
                    break
    assert lab.bobs in seen and "c2" in seen
    assert not {lab.mine, alices, lab.result, "c1"} & set(seen)


def test_pending_requests_of_a_tenant_are_those_within_its_limits(lab):
    """FINALES2's /pending_requests/: a tenant still sees every pending request it can serve."""
    assert [r["uuid"] for r in lab.get("asab", "/pending_requests/").json()] == [lab.bobs]
    assert [r["uuid"] for r in lab.get("asab2", "/pending_requests/").json()] == [lab.bobs]
    assert lab.get("aiida", "/pending_requests/").json() == []
    assert [r["uuid"] for r in lab.get("op", "/pending_requests/").json()] == [lab.bobs]
    assert lab.get("alice", "/pending_requests/").json() == []


def test_a_tenant_keeps_seeing_what_it_held_after_leaving_that_line_of_work(lab):
    asab = lab.tenants["ASAB_tenant"]
    lab.lab.registry.set_tenant_active(asab, False, "test")
    seen = {r["uuid"] for r in lab.get("asab", "/api/v1/requests").json()["items"]}
    assert seen == {lab.mine}  # it resolved alice's; bob's is no longer in its line of work
    assert lab.get("asab", f"/api/v1/requests/{lab.bobs}").status_code == 404


def test_a_request_one_cannot_see_cannot_be_changed_either(lab):
    r = lab.post("aiida", f"/api/v1/requests/{lab.bobs}/cancel")
    assert r.status_code == 404
    r = lab.post("alice", f"/requests/{lab.bobs}/update_status/", params={"request_id": lab.bobs, "new_status": "retracted"})
    assert r.status_code == 404
    assert lab.get("op", f"/api/v1/requests/{lab.bobs}").json()["status"] == "pending"


def test_a_principal_without_a_tenant_sees_only_its_own(lab):
    from labweave.services.server.visibility import Viewer

    cat = lab.lab.registry.catalogue()
    assert Viewer.of(Principal("op", "operator"), cat).request_filter() is None
    tenantless = Viewer.of(Principal("t", "tenant", None), cat)
    assert tenantless.tenant_uuid is None and not tenantless.sees_all

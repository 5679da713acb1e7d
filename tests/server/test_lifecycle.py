"""The lifecycles: every status change of a request, campaign or result is in its table, made by one of
the actors the table names, and every code path (claims, the lease sweeper, results...) goes through it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from labweave.schemas.core import RequestStatus as S
from labweave.schemas.core import ResultStatus as R
from labweave.services.server import lifecycle
from labweave.services.server.errors import Conflict, Forbidden
from labweave.services.server.lifecycle import CAMPAIGN, REQUEST, RESULT, Actor, CampaignStatus as C

from .helpers import expire_leases, flow_request, flow_result, open_lab, two_flow_tenants

A = Actor


def cases(table):
    """(table, from, to, actor, allowed) for every change of the table and every actor."""
    for (old, new), allowed in sorted(table.moves.items(), key=str):
        for actor in Actor:
            yield pytest.param(table, old, new, actor, actor in allowed,
                               id=f"{table.noun}-{old}->{new}-{actor.value}")


# -- the tables ---------------------------------------------------------------------
EXPECTED_REQUEST_MOVES = {
    (None, "pending"): {A.REQUESTER, A.TENANT, A.OPERATOR},
    (None, "proposed"): {A.REQUESTER, A.OPERATOR},
    (None, "unsolicited"): {A.TENANT, A.OPERATOR},
    ("pending", "reserved"): {A.TENANT},
    ("reserved", "resolved"): {A.OWNER},
    ("pending", "resolved"): {A.LATE_OWNER},
    ("failed", "resolved"): {A.LATE_OWNER},
    ("reserved", "pending"): {A.OWNER, A.OPERATOR, A.SYSTEM},
    ("reserved", "failed"): {A.OWNER, A.OPERATOR, A.SYSTEM},
    ("pending", "failed"): {A.OPERATOR, A.SYSTEM},
    ("pending", "retracted"): {A.REQUESTER, A.OPERATOR},
    ("reserved", "retracted"): {A.REQUESTER, A.OPERATOR},
    ("proposed", "retracted"): {A.REQUESTER, A.OPERATOR},
    ("proposed", "pending"): {A.OPERATOR},
}


def test_the_request_table_is_the_one_reviewed():
    assert {k: set(v) for k, v in REQUEST.moves.items()} == EXPECTED_REQUEST_MOVES


def test_the_campaign_table_is_the_one_reviewed():
    both = {A.REQUESTER, A.OPERATOR}
    assert {k: set(v) for k, v in CAMPAIGN.moves.items()} == {
        (None, "running"): both, (None, "paused"): both,
        ("running", "paused"): both, ("paused", "running"): both,
        ("running", "finished"): {A.REQUESTER}, ("paused", "finished"): {A.REQUESTER},
        ("running", "stopped"): both, ("paused", "stopped"): both,
    }


@pytest.mark.parametrize("table, old, new, actor, allowed", [*cases(REQUEST), *cases(CAMPAIGN), *cases(RESULT)])
def test_every_change_of_every_table_for_every_actor(table, old, new, actor, allowed):
    if allowed:
        table.check(old, new, {actor})
    else:
        with pytest.raises(Forbidden) as refused:
            table.check(old, new, {actor}, "x1")
        assert f"{table.noun} x1: only the " in refused.value.message
        assert f"{old or 'new'} {table.noun} to {new}" in refused.value.message


@pytest.mark.parametrize("table, old, new", [
    (REQUEST, S.RESOLVED, S.PENDING), (REQUEST, S.RESOLVED, S.RETRACTED), (REQUEST, S.RETRACTED, S.PENDING),
    (REQUEST, S.UNSOLICITED, S.RESOLVED), (REQUEST, S.FAILED, S.PENDING), (REQUEST, S.PROPOSED, S.RESERVED),
    (REQUEST, S.PENDING, S.PROPOSED), (REQUEST, None, S.RESERVED), (REQUEST, None, S.RESOLVED),
    (CAMPAIGN, C.FINISHED, C.RUNNING), (CAMPAIGN, C.STOPPED, C.RUNNING), (CAMPAIGN, C.FINISHED, C.STOPPED),
    (CAMPAIGN, None, C.FINISHED), (RESULT, R.DELETED, R.ORIGINAL), (RESULT, R.AMENDED, R.ORIGINAL),
    (RESULT, R.DELETED, R.AMENDED),
])
def test_a_change_outside_the_table_is_a_conflict_naming_both_statuses(table, old, new):
    with pytest.raises(Conflict) as refused:
        table.check(old, new, set(Actor))  # whoever asks
    message = refused.value.message
    assert f"from {old.value if old else '(new)'} to {new.value}" in message


def test_the_same_status_again_is_a_conflict():
    with pytest.raises(Conflict, match="already reserved"):
        REQUEST.check("reserved", "reserved", set(Actor), "r1")


def test_every_status_is_reachable_and_the_final_ones_stay():
    reached, frontier = set(), {None}
    while frontier:
        frontier = {new for (old, new) in REQUEST.moves if old in frontier} - reached
        reached |= frontier
    assert reached == {s.value for s in S}
    for final in (S.RESOLVED, S.RETRACTED, S.UNSOLICITED):
        assert REQUEST.next_statuses(final.value) == []
    assert CAMPAIGN.next_statuses("finished") == CAMPAIGN.next_statuses("stopped") == []


# -- every code path goes through the table -------------------------------------------
@pytest.fixture
def lab(database_url):
    lab = open_lab(database_url, max_lease_expiries=3, max_attempts=2)
    two_flow_tenants(lab)
    return lab


def create(lab, user="alice", **extra) -> str:
    r = lab.post(user, "/api/v1/requests", json=flow_request() | extra)
    assert r.status_code == 201, r.text
    return r.json()["uuid"]


def history(lab, uuid):
    return [(h["from_status"], h["to_status"], h["actor"])
            for h in lab.get("op", f"/api/v1/requests/{uuid}/history").json()]


def without(table, *moves):
    """The table with ``moves`` (pairs of statuses) taken out."""
    return replace(table, moves={k: v for k, v in table.moves.items() if k not in moves})


def test_claims_and_the_lease_sweeper_write_their_history_through_the_lifecycle(lab, monkeypatch):
    uuid = create(lab)
    assert lab.post("asab", "/api/v1/claims", json={"lease_seconds": 1}).json()["request"]["uuid"] == uuid
    assert expire_leases(lab.lab.db, 3) == 1
    assert history(lab, uuid) == [(None, "pending", "alice"), ("pending", "reserved", "asab"),
                                  ("reserved", "pending", "lease-sweeper")]
    # take the claim's move out of the table: the claim is refused
    monkeypatch.setattr(lifecycle, "REQUEST", without(REQUEST, ("pending", "reserved")))
    r = lab.post("asab", "/api/v1/claims", json={"lease_seconds": 1})
    assert r.status_code == 409 and "from pending to reserved" in r.json()["detail"]
    monkeypatch.undo()
    lab.post("asab", "/api/v1/claims", json={"lease_seconds": 1})
    # take the sweeper out of the reserved -> pending move: the sweep is refused, nothing changes
    sweeper_out = dict(REQUEST.moves)
    sweeper_out[("reserved", "pending")] = frozenset({A.OWNER, A.OPERATOR})
    monkeypatch.setattr(lifecycle, "REQUEST", replace(REQUEST, moves=sweeper_out))
    with pytest.raises(Forbidden, match="reserved request to pending"):
        expire_leases(lab.lab.db, 3)
    assert lab.get("op", f"/api/v1/requests/{uuid}").json()["status"] == "reserved"


def test_the_sweeper_fails_a_request_whose_leases_keep_expiring(lab):
    uuid = create(lab)
    for _ in range(3):
        lab.post("asab", "/api/v1/claims", json={"lease_seconds": 1})
        expire_leases(lab.lab.db, 3)
    assert history(lab, uuid)[-1] == ("reserved", "failed", "lease-sweeper")
    assert lab.get("op", f"/api/v1/requests/{uuid}").json()["failure_reason"] == "lease expired 3 times"


def test_results_releases_failures_retractions_and_approvals_write_their_history(lab):
    resolved = create(lab)
    lab.post("asab", "/api/v1/claims", json={})
    assert lab.post("asab", f"/api/v1/requests/{resolved}/release", json={"reason": "r"}).status_code == 200
    lab.post("asab", "/api/v1/claims", json={})
    assert lab.post("asab", "/api/v1/results", json=flow_result(resolved, lab.tenants["ASAB_tenant"])).status_code == 201
    assert history(lab, resolved)[1:] == [("pending", "reserved", "asab"), ("reserved", "pending", "asab"),
                                          ("pending", "reserved", "asab"), ("reserved", "resolved", "asab")]

    retried = create(lab)
    lab.post("asab", "/api/v1/claims", json={})
    lab.post("asab", f"/api/v1/requests/{retried}/fail", json={"reason": "jam", "retryable": True})
    lab.post("asab", "/api/v1/claims", json={})
    lab.post("asab", f"/api/v1/requests/{retried}/fail", json={"reason": "jam", "retryable": True})
    assert history(lab, retried)[1:] == [("pending", "reserved", "asab"), ("reserved", "pending", "asab"),
                                         ("pending", "reserved", "asab"), ("reserved", "failed", "asab")]

    proposal = create(lab, proposed=True)
    assert lab.post("op", f"/api/v1/requests/{proposal}/approve").status_code == 200
    assert lab.post("alice", f"/requests/{proposal}/update_status/",
                    params={"request_id": proposal, "new_status": "retracted"}).status_code == 200
    assert history(lab, proposal) == [(None, "proposed", "alice"), ("proposed", "pending", "op"),
                                      ("pending", "retracted", "alice")]


def test_an_illegal_change_is_409_naming_both_statuses_and_an_unauthorised_one_403(lab):
    uuid = create(lab)
    r = lab.post("op", f"/api/v1/requests/{uuid}/approve")
    assert r.status_code == 409 and "already pending" in r.json()["detail"]
    lab.post("asab", "/api/v1/claims", json={})
    r = lab.post("asab2", f"/api/v1/requests/{uuid}/release", json={"reason": "not mine"})
    assert r.status_code == 403 and "reserved request to pending" in r.json()["detail"]
    r = lab.post("alice", f"/api/v1/requests/{uuid}/fail", json={"reason": "impatient"})
    assert r.status_code == 403
    lab.post("asab", "/api/v1/results", json=flow_result(uuid, lab.tenants["ASAB_tenant"]))
    r = lab.post("alice", f"/api/v1/requests/{uuid}/cancel")
    assert r.status_code == 409 and "from resolved to retracted" in r.json()["detail"]
    r = lab.post("op", f"/requests/{uuid}/update_status/", params={"request_id": uuid, "new_status": "pending"})
    assert r.status_code == 409 and "from resolved to pending" in r.json()["detail"]


def test_failing_a_request_nobody_holds_is_final(lab):
    uuid = create(lab)
    r = lab.post("op", f"/api/v1/requests/{uuid}/fail", json={"reason": "bad batch", "retryable": True})
    assert r.json()["status"] == "failed" and r.json()["attempts"] == 0
    assert history(lab, uuid)[-1] == ("pending", "failed", "op")


def test_result_status_changes_follow_the_result_table(lab):
    uuid = create(lab)
    lab.post("asab", "/api/v1/claims", json={})
    result = lab.post("asab", "/api/v1/results", json=flow_result(uuid, lab.tenants["ASAB_tenant"])).json()["uuid"]

    def mark(user, status):
        return lab.post(user, f"/results/{result}/update_status/", params={"result_id": result, "new_status": status})

    assert mark("asab2", "amended").status_code == 403  # not the tenant that posted it
    assert mark("asab", "amended").status_code == 200
    r = mark("asab", "original")
    assert r.status_code == 409 and "from amended to original" in r.json()["detail"]
    assert mark("op", "deleted").status_code == 200
    assert mark("op", "amended").status_code == 409
    kinds = [(e["from_status"], e["to_status"], e["actor"]) for e in lab.get("op", "/api/v1/events").json()["items"]
             if e["kind"] == "result.status"]
    assert kinds == [("original", "amended", "asab"), ("amended", "deleted", "op")]


# -- campaigns ---------------------------------------------------------------------
def put(lab, user, name, status=None):
    return lab.client.put(f"/api/v1/campaigns/{name}", json={"spec": {"budget": 3}, "status": status},
                          headers=lab.headers(user))


def test_campaign_transitions(lab):
    assert put(lab, "asab", "c1").status_code == 403  # tenants do not run campaigns
    r = put(lab, "alice", "c1", "finished")
    assert r.status_code == 409 and "from (new) to finished" in r.json()["detail"]
    assert put(lab, "alice", "c1").json()["status"] == "running"
    assert lab.post("alice", "/api/v1/campaigns/c1/pause").json()["status"] == "paused"
    assert lab.post("alice", "/api/v1/campaigns/c1/pause").json()["status"] == "paused"  # the same again: no change
    assert lab.post("op", "/api/v1/campaigns/c1/resume").json()["status"] == "running"
    r = put(lab, "op", "c1", "finished")  # only its optimizer (its creator) says it is finished
    assert r.status_code == 403 and "running campaign to finished" in r.json()["detail"]
    assert put(lab, "alice", "c1", "finished").json()["status"] == "finished"
    r = lab.post("alice", "/api/v1/campaigns/c1/resume")
    assert r.status_code == 409 and "from finished to running" in r.json()["detail"]
    r = lab.post("op", "/api/v1/campaigns/c1/pause")
    assert r.status_code == 409 and "from finished to paused" in r.json()["detail"]
    assert lab.get("alice", "/api/v1/campaigns/c1").json()["status"] == "finished"
    r = put(lab, "alice", "c1", "done")
    assert r.status_code == 422 and r.json()["detail"].startswith("status:")

    assert put(lab, "alice", "c2").status_code == 200
    assert lab.post("op", "/api/v1/campaigns/c2/pause").status_code == 200
    assert put(lab, "op", "c2", "stopped").json()["status"] == "stopped"
    moves = [(e["subject"], e["from_status"], e["to_status"], e["actor"])
             for e in lab.get("op", "/api/v1/events", params={"kind": ["campaign.created", "campaign.status"]}).json()["items"]]
    assert moves == [("c1", None, "running", "alice"), ("c1", "running", "paused", "alice"),
                     ("c1", "paused", "running", "op"), ("c1", "running", "finished", "alice"),
                     ("c2", None, "running", "alice"), ("c2", "running", "paused", "op"),
                     ("c2", "paused", "stopped", "op")]


def test_another_requester_cannot_steer_a_campaign(lab):
    lab.add_user("bob", "requester", flow_request()["tenant_uuid"])
    put(lab, "alice", "c1")
    assert lab.post("bob", "/api/v1/campaigns/c1/pause").status_code == 404  # not his to see
    assert put(lab, "bob", "c1", "stopped").status_code == 409  # the name is taken
    assert lab.get("op", "/api/v1/campaigns/c1").json()["status"] == "running"

"""A claim reads its user's row, its tenant's standing and the lab's pause in its own first statement
(``claim_gate``): what another replica changed holds for the very next claim, whatever this replica
has cached; claims racing through two replica processes never take a request twice."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from labweave.services.server.app import create_app
from labweave.services.server.auth import set_active, set_password
from labweave.services.server.db.engine import open_database
from labweave.services.server.db.tables import User, table_of
from labweave.services.server.process import ServerProcess

from .helpers import Lab, flow_request, open_lab, settings_for, two_flow_tenants

#: Replica A caches tenants and users for a minute: only the claim's own read can see a change made on B.
CACHED = {"cache_seconds": 60, "auth_cache_seconds": 60}


@pytest.fixture
def replicas(database_url):
    """Replica A (with long caches, users ``asab`` and ``asab2`` logged in) and replica B on the same database."""
    a = open_lab(database_url, **CACHED)
    two_flow_tenants(a)
    b = Lab(TestClient(create_app(settings_for(database_url, **CACHED))), tenants=dict(a.tenants))
    b.login("op")
    for user in ("asab", "asab2"):
        assert claim(a, user).status_code == 204  # A has read (and cached) the users and the tenants
    yield a, b
    a.lab.close()
    b.lab.close()


def claim(lab: Lab, user: str = "asab"):
    return lab.post(user, "/api/v1/claims", json={})


def queued(lab: Lab) -> str:
    return lab.post("alice", "/requests/", json=flow_request()).json()


@pytest.mark.parametrize("stop, resume", [("stop", "resume"), ("deactivate", "activate")])
def test_a_tenant_stopped_through_another_replica_cannot_claim_at_once(replicas, stop, resume):
    a, b = replicas
    uuid = queued(a)
    tenant = a.tenants["ASAB_tenant"]
    assert b.post("op", f"/api/v1/tenants/{tenant}/{stop}").status_code == 200
    r = claim(a)
    assert r.status_code == 409 and ("asked to stop" in r.text or "not active" in r.text), r.text
    assert a.get("op", f"/api/v1/requests/{uuid}").json()["status"] == "pending"  # nothing taken
    assert claim(a, "asab2").json()["request"]["uuid"] == uuid  # its twin is not stopped
    other = queued(a)
    assert b.post("op", f"/api/v1/tenants/{tenant}/{resume}").status_code == 200
    assert claim(a).json()["request"]["uuid"] == other


def test_a_pause_through_another_replica_refuses_the_next_claim(replicas):
    a, b = replicas
    uuid = queued(a)
    assert b.post("op", "/api/v1/lab/pause", json={"reason": "glovebox"}).status_code == 200
    r = claim(a)
    assert r.status_code == 409 and r.json()["lab"] == "paused" and "glovebox" in r.text, r.text
    assert r.headers["Retry-After"]
    assert b.post("op", "/api/v1/lab/resume").status_code == 200
    assert claim(a).json()["request"]["uuid"] == uuid


def test_a_paused_lab_refuses_a_tenant_that_offers_nothing_asked_for(replicas):
    a, b = replicas
    assert b.post("op", "/api/v1/lab/pause", json={}).status_code == 200
    r = a.post("asab", "/api/v1/claims", json={"quantity": "no_such_quantity"})
    assert r.status_code == 409 and r.json()["lab"] == "paused", r.text


def test_a_disabled_user_or_a_changed_password_stops_claims_at_once(replicas):
    a, b = replicas
    uuid = queued(a)
    set_password(b.lab.db, "asab2", "a new password", 4)
    r = claim(a, "asab2")
    assert r.status_code == 401 and "revoked" in r.text, r.text
    set_active(b.lab.db, "asab", False)
    r = claim(a, "asab")
    assert r.status_code == 401, r.text
    assert a.get("op", f"/api/v1/requests/{uuid}").json()["status"] == "pending"


def test_a_user_whose_tenant_changed_claims_for_its_new_tenant(replicas):
    a, b = replicas
    uuid = queued(a)
    twin = a.tenants["ASAB twin"]
    with b.lab.db.write.begin() as conn:  # another tool moved the user (its tokens left valid)
        conn.execute(update(table_of(User)).where(table_of(User).c.username == "asab").values(tenant_uuid=twin))
    r = claim(a, "asab")
    assert r.status_code == 200, r.text
    assert r.json()["request"]["uuid"] == uuid
    held = a.get("op", f"/api/v1/requests/{uuid}").json()
    assert held["owner_tenant_uuid"] == twin, held


@pytest.mark.slow
def test_claims_racing_through_two_replica_processes_take_each_request_once(database_url, tmp_path):
    lab = open_lab(database_url)
    two_flow_tenants(lab)
    made = {queued(lab) for _ in range(120)}
    lab.lab.close()
    env = {"LABWEAVE_PASSWORD_ROUNDS": "4", "LABWEAVE_SECRET_KEY": "claim-gate-test-signing-key-of-32-bytes",
           "LABWEAVE_CACHE_SECONDS": "5"}
    claimed: list[str] = []
    lock = threading.Lock()
    with ServerProcess(database_url, env=env, log_path=tmp_path / "a.log") as one, \
            ServerProcess(database_url, env=env, log_path=tmp_path / "b.log") as two:
        bases = [one.url, two.url]
        tokens = {u: httpx.post(f"{one.url}/user_management/authenticate", data={"username": u, "password": u})
                  .json()["access_token"] for u in ("asab", "asab2")}
        start = threading.Barrier(8)

        def claimer(i: int) -> None:
            user = ("asab", "asab2")[i % 2]
            with httpx.Client(base_url=bases[i % 4 // 2], timeout=60,
                              headers={"Authorization": f"Bearer {tokens[user]}"}) as c:
                start.wait()
                while True:
                    r = c.post("/api/v1/claims", json={})
                    if r.status_code == 204:
                        return
                    assert r.status_code == 200, r.text
                    with lock:
                        claimed.append(r.json()["request"]["uuid"])

        threads = [threading.Thread(target=claimer, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert Counter(claimed).most_common(1)[0][1] == 1
    assert set(claimed) == made
    db = open_database(database_url)
    with db.read.connect() as conn:
        events = Counter(s for (s,) in conn.execute(text(
            "SELECT subject FROM event WHERE kind = 'request.status' AND to_status = 'reserved'")))
        owners = conn.execute(text("SELECT count(*) FROM request WHERE status = 'reserved' "
                                   "AND owner_tenant_uuid IS NOT NULL")).scalar()
    db.dispose()
    assert set(events) == made and max(events.values()) == 1
    assert owners == len(made)

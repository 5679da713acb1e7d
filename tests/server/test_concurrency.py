"""Many claimers racing over real HTTP against a real server process: no double claims, nothing lost."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest

from labweave.services.server.process import ServerProcess

from ..conftest import shared_path
from .helpers import flow_request, flow_result, load, open_lab

TENANTS = 16
THREADS_PER_TENANT = 2
REQUESTS = 150


def prepare(url: str) -> dict[str, str]:
    """Register 16 twin tenants with a user each; returns user -> tenant uuid."""
    lab = open_lab(url, tenants=False)
    asab = load(shared_path("finales2", "examples", "tenants", "conductivity", "ASAB.json"))
    users = {}
    for i in range(TENANTS):
        uuid = lab.add_tenant(asab | {"name": f"ASAB {i}"})
        lab.add_user(f"t{i}", "tenant", uuid)
        users[f"t{i}"] = uuid
    lab.client.app.state.lab.close()
    return users


def token(base: str, user: str) -> str:
    r = httpx.post(f"{base}/user_management/authenticate", data={"username": user, "password": user})
    r.raise_for_status()
    return r.json()["access_token"]


@pytest.mark.slow
@pytest.mark.parametrize("style", ["claims", "finales2"])
def test_racing_claimers(database_url, tmp_path, style):
    users = prepare(database_url)
    env = {"LABWEAVE_PASSWORD_ROUNDS": "4", "LABWEAVE_SECRET_KEY": "racing-claimers-signing-key-of-32-bytes"}
    with ServerProcess(database_url, env=env, log_path=tmp_path / "server.log") as server:
        base = server.url
        requester = {"Authorization": f"Bearer {token(base, 'alice')}"}
        with httpx.Client(base_url=base, headers=requester, timeout=30) as c:
            made = [c.post("/requests/", json=flow_request()).json() for _ in range(REQUESTS)]
        assert len(set(made)) == REQUESTS
        claimed: list[tuple[str, str]] = []
        conflicts = Counter()
        lock = threading.Lock()
        start = threading.Barrier(TENANTS * THREADS_PER_TENANT)

        def claimer(user: str) -> None:
            headers = {"Authorization": f"Bearer {token(base, user)}"}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
                start.wait()
                while True:
                    if style == "claims":
                        r = c.post("/api/v1/claims", json={})
                        if r.status_code == 204:
                            return
                        r.raise_for_status()
                        uuid = r.json()["request"]["uuid"]
                    else:  # FINALES2's tenant pattern: list pending, reserve the first
                        pending = c.get("/pending_requests/", params={"quantity": "electrolyte"}).json()
                        if not pending:
                            return
                        uuid = pending[0]["uuid"]
                        r = c.post(f"/requests/{uuid}/update_status/",
                                   params={"request_id": uuid, "new_status": "reserved"})
                        if r.status_code == 409:
                            with lock:
                                conflicts[user] += 1
                            continue
                        r.raise_for_status()
                    with lock:
                        claimed.append((uuid, user))
                    posted = c.post("/results/", json=flow_result(uuid, users[user]))
                    assert posted.status_code == 200, posted.text

        threads = [threading.Thread(target=claimer, args=(f"t{i}",)) for i in range(TENANTS)
                   for _ in range(THREADS_PER_TENANT)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        counts = Counter(uuid for uuid, _ in claimed)
        assert [u for u, n in counts.items() if n > 1] == []  # zero double claims
        assert set(counts) == set(made)  # none lost
        with httpx.Client(base_url=base, headers=requester, timeout=30) as c:
            statuses = Counter(r["status"] for r in c.get("/all_requests/").json())
            results = c.get("/results_requested/", params={"quantity": "electrolyte"}).json()
        assert statuses == {"resolved": REQUESTS}
        assert len(results) == REQUESTS and len({r["result"]["request_uuid"] for r in results}) == REQUESTS
        assert len({user for _, user in claimed}) > 1  # the work really was shared

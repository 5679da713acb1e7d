"""A hypothesis state machine over the request lifecycle, driving the real app on its own SQLite file.

Rules: requests created (``/api/v1/requests`` and FINALES2's ``/requests/``),
claimed (``/api/v1/claims`` and FINALES2's ``update_status`` to reserved) by
two tenants, heartbeats, results posted (both route sets, with and without an
``Idempotency-Key``, replays included), failures (retryable and final),
releases, retractions by the requester, and leases expiring (a lease
sweeper whose own clock is stepped past every lease, ``expire_leases``). A model of the lifecycle predicts every answer; after each step the
invariants hold:

- every request is in the status the model says, held by the tenant it says;
- every status change in a request's history is one the lifecycle table allows;
- a request has at most one result, and a resolved one exactly one;
- only the tenant holding the lease heartbeats; only it (or its late holder)
  posts a result;
- the listings never answer 5xx and agree with the reads of each request.

``LABWEAVE_STATE_EXAMPLES`` runs (default 8) of up to
``LABWEAVE_STATE_STEPS`` steps (default 15): CI runs the defaults.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from labweave.services.server.lifecycle import REQUEST_MOVES

from ..server.helpers import expire_leases, flow_request, flow_result, open_lab, two_flow_tenants

EXAMPLES = int(os.environ.get("LABWEAVE_STATE_EXAMPLES", "8"))
STEPS = int(os.environ.get("LABWEAVE_STATE_STEPS", "15"))
MAX_ATTEMPTS = 2  # small, so that runs reach the failed status
MAX_EXPIRIES = 2

TENANTS = ("asab", "asab2")
USERS = ("alice", "asab", "asab2", "op")
KEYS = ("k1", "k2", "k3")  # few, so that tenants meet each other's keys
ALLOWED = {(old, new) for old, new in REQUEST_MOVES}


@dataclass
class Model:
    """What the server should hold for one request."""

    uuid: str
    status: str = "pending"
    holder: str | None = None  # the tenant user holding the lease
    last_holder: str | None = None
    attempts: int = 0
    expiries: int = 0
    result: str | None = None  # the uuid of its result
    result_by: str | None = None


class RequestLifecycle(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="labweave-machine-")
        self.lab = open_lab(f"sqlite:///{self.folder}/lab.db", max_attempts=MAX_ATTEMPTS,
                            max_lease_expiries=MAX_EXPIRIES)
        two_flow_tenants(self.lab)
        self.tenant_uuid = {"asab": self.lab.tenants["ASAB_tenant"], "asab2": self.lab.tenants["ASAB twin"]}
        self.by_uuid_tenant = {v: k for k, v in self.tenant_uuid.items()}
        self.requests: list[Model] = []  # in creation order: claims take the oldest pending
        self.keys: dict[str, tuple[str, str, str]] = {}  # key -> (tenant user, request, result)
        self.touched: str | None = None

    def teardown(self):
        try:
            for m in self.requests:
                self.check_history(m)
        finally:
            self.lab.lab.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- helpers ------------------------------------------------------------------------
    def pick(self, i: int) -> Model:
        return self.requests[i % len(self.requests)]

    def call(self, user: str, method: str, path: str, **kw):
        r = self.lab.client.request(method, path, headers=self.lab.headers(user), **kw)
        assert r.status_code < 500, f"{user} {method} {path}: {r.status_code} {r.text[:300]}"
        return r

    def expect(self, r, status: int, what: str) -> None:
        assert r.status_code == status, f"{what}: expected {status}, got {r.status_code} {r.text[:300]}"

    def let_go(self, m: Model) -> None:
        m.holder = None

    def took(self, m: Model, tenant: str) -> None:
        m.status, m.holder, m.last_holder = "reserved", tenant, tenant

    # -- rules ----------------------------------------------------------------------------
    @precondition(lambda self: len(self.requests) < 6)
    @rule(finales2=st.booleans())
    def create(self, finales2):
        if finales2:
            r = self.call("alice", "POST", "/requests/", json=flow_request())
            self.expect(r, 200, "FINALES2 create")
            uuid = r.json()
        else:
            r = self.call("alice", "POST", "/api/v1/requests", json=flow_request())
            self.expect(r, 201, "create")
            uuid = r.json()["uuid"]
        self.requests.append(Model(uuid))
        self.touched = uuid

    @rule(tenant=st.sampled_from(TENANTS))
    def claim(self, tenant):
        r = self.call(tenant, "POST", "/api/v1/claims", json={})
        pending = [m for m in self.requests if m.status == "pending"]
        if not pending:
            self.expect(r, 204, f"{tenant} claims with nothing pending")
            return
        self.expect(r, 200, f"{tenant} claims")
        got = r.json()["request"]["uuid"]
        assert got == pending[0].uuid, f"{tenant} claimed {got}, not the oldest pending {pending[0].uuid}"
        self.took(pending[0], tenant)
        self.touched = got

    @precondition(lambda self: self.requests)
    @rule(i=st.integers(0, 50), tenant=st.sampled_from(TENANTS))
    def reserve_finales2(self, i, tenant):
        m = self.pick(i)
        r = self.call(tenant, "POST", f"/requests/{m.uuid}/update_status/",
                      params={"request_id": m.uuid, "new_status": "reserved"})
        self.expect(r, 200 if m.status == "pending" else 409, f"{tenant} reserves a {m.status} request")
        if m.status == "pending":
            self.took(m, tenant)
        self.touched = m.uuid

    @precondition(lambda self: self.requests)
    @rule(i=st.integers(0, 50), user=st.sampled_from(USERS))
    def heartbeat(self, i, user):
        m = self.pick(i)
        r = self.call(user, "POST", f"/api/v1/requests/{m.uuid}/heartbeat")
        if user not in TENANTS:
            self.expect(r, 403, f"{user} (no tenant's user) heartbeats")
        elif m.status == "reserved" and m.holder == user:
            self.expect(r, 200, f"{user} heartbeats the lease it holds")
        else:
            self.expect(r, 409, f"{user} heartbeats a {m.status} request held by {m.holder}")

    def result_outcome(self, m: Model, tenant: str) -> int:
        """What the lifecycle answers a result from ``tenant`` for ``m`` (without a known key)."""
        if m.status == "resolved":
            return 200 if m.result_by == tenant else 409  # the same data from the same tenant: a repeat
        allowed = {new: who for (old, new), who in REQUEST_MOVES.items() if old == m.status}.get("resolved")
        if allowed is None:
            return 409
        actors = {"tenant"}
        if m.status == "reserved" and m.holder == tenant:
            actors.add("owner")
        if m.holder is None and m.last_holder == tenant:
            actors.add("late_owner")
        return 201 if actors & {a.value for a in allowed} else 403

    @precondition(lambda self: self.requests)
    @rule(i=st.integers(0, 50), tenant=st.sampled_from(TENANTS), route=st.sampled_from(["api", "finales2"]),
          key=st.sampled_from((None, *KEYS)))
    def post_result(self, i, tenant, route, key):
        m = self.pick(i)
        body = flow_result(m.uuid, self.tenant_uuid[tenant])
        if route == "finales2" or key is None:
            expected = self.result_outcome(m, tenant)
        else:
            known = self.keys.get(key)
            if known is None:
                expected = self.result_outcome(m, tenant)
            elif known[0] != tenant or known[1] != m.uuid:
                expected = 409  # another tenant's key, or this key for another request
            else:
                expected = 200  # a replay: the result stored before
        if route == "finales2":
            r = self.call(tenant, "POST", "/results/", json=body)
            what = f"{tenant} posts (FINALES2) a result for a {m.status} request held by {m.holder}"
            self.expect(r, 200 if expected in (200, 201) else expected, what)
            uuid = r.json() if r.status_code == 200 else None
        else:
            headers = {"Idempotency-Key": key} if key else {}
            r = self.lab.client.post("/api/v1/results", json=body, headers=self.lab.headers(tenant) | headers)
            assert r.status_code < 500, r.text
            what = f"{tenant} posts a result (key {key}) for a {m.status} request held by {m.holder}"
            self.expect(r, expected, what)
            uuid = r.json()["uuid"] if r.status_code in (200, 201) else None
        if expected == 201:
            m.status, m.result, m.result_by = "resolved", uuid, tenant
            self.let_go(m)
            if key and route == "api":
                self.keys[key] = (tenant, m.uuid, uuid)
        elif expected == 200:
            assert uuid == m.result, f"a repeat answered {uuid}, not the result stored before ({m.result})"
        self.touched = m.uuid

    @precondition(lambda self: self.keys)
    @rule(k=st.sampled_from(KEYS))
    def replay(self, k):
        """The same Idempotency-Key and body again: the stored result, whatever happened since."""
        if k not in self.keys:
            return
        tenant, request_uuid, result = self.keys[k]
        r = self.lab.client.post("/api/v1/results", json=flow_result(request_uuid, self.tenant_uuid[tenant]),
                                 headers=self.lab.headers(tenant) | {"Idempotency-Key": k})
        self.expect(r, 200, f"a replay of key {k}")
        assert r.json()["uuid"] == result

    @precondition(lambda self: self.requests)
    @rule(i=st.integers(0, 50), tenant=st.sampled_from(TENANTS), retryable=st.booleans())
    def fail(self, i, tenant, retryable):
        m = self.pick(i)
        r = self.call(tenant, "POST", f"/api/v1/requests/{m.uuid}/fail",
                      json={"reason": "the cell leaked", "retryable": retryable})
        new = "failed"
        attempts = m.attempts
        if retryable and m.status == "reserved":
            attempts += 1
            if attempts < MAX_ATTEMPTS:
                new = "pending"
        what = f"{tenant} fails ({'retryable' if retryable else 'final'}) a {m.status} request held by {m.holder}"
        if m.status == new or (m.status, new) not in ALLOWED:
            self.expect(r, 409, what)
        elif m.status == "reserved" and m.holder == tenant:
            self.expect(r, 200, what)
            m.status, m.attempts = new, attempts
            self.let_go(m)
        else:
            self.expect(r, 403, what)
        self.touched = m.uuid

    @precondition(lambda self: self.requests)
    @rule(i=st.integers(0, 50), tenant=st.sampled_from(TENANTS))
    def release(self, i, tenant):
        m = self.pick(i)
        r = self.call(tenant, "POST", f"/api/v1/requests/{m.uuid}/release", json={"reason": "instrument busy"})
        what = f"{tenant} releases a {m.status} request held by {m.holder}"
        if m.status == "pending" or (m.status, "pending") not in ALLOWED:
            self.expect(r, 409, what)
        elif m.holder == tenant:
            self.expect(r, 200, what)
            m.status = "pending"
            self.let_go(m)
        else:
            self.expect(r, 403, what)
        self.touched = m.uuid

    @precondition(lambda self: self.requests)
    @rule(i=st.integers(0, 50))
    def retract(self, i):
        m = self.pick(i)
        r = self.call("alice", "POST", f"/api/v1/requests/{m.uuid}/cancel", json={"reason": "not needed"})
        if m.status in ("pending", "reserved"):
            self.expect(r, 200, f"alice retracts her {m.status} request")
            m.status = "retracted"
            self.let_go(m)
        else:
            self.expect(r, 409, f"alice retracts her {m.status} request")
        self.touched = m.uuid

    @precondition(lambda self: any(m.status == "reserved" for m in self.requests))
    @rule()
    def leases_expire(self):
        """A sweeper sees every held lease stand still for longer than its length (its clock stepped on)."""
        held = [m for m in self.requests if m.status == "reserved"]
        handled = expire_leases(self.lab.lab.db, MAX_EXPIRIES)
        assert handled == len(held)
        for m in self.requests:
            if m.status == "reserved":
                m.expiries += 1
                m.status = "failed" if m.expiries >= MAX_EXPIRIES else "pending"
                self.let_go(m)

    # -- invariants --------------------------------------------------------------------------
    def read(self, m: Model) -> dict:
        r = self.call("op", "GET", f"/api/v1/requests/{m.uuid}")
        self.expect(r, 200, "the operator reads a request")
        return r.json()

    def check_history(self, m: Model) -> None:
        r = self.call("op", "GET", f"/api/v1/requests/{m.uuid}/history")
        self.expect(r, 200, "history")
        for e in r.json():
            move = (e.get("from_status"), e["to_status"])
            assert move in ALLOWED, f"request {m.uuid}: {move} is not in the lifecycle table"

    def agrees(self, m: Model, got: dict) -> None:
        """One request as the server shows it (a read or a listing's item) is as the model says."""
        assert got["status"] == m.status, f"{m.uuid}: the server says {got['status']}, the model {m.status}"
        holder = self.by_uuid_tenant.get(got.get("owner_tenant_uuid") or "")
        assert holder == m.holder, f"{m.uuid}: held by {holder}, the model says {m.holder}"
        assert got["lease_expiries"] == m.expiries, f"{m.uuid}: {got['lease_expiries']} expiries, not {m.expiries}"

    @invariant()
    def the_last_request_changed_reads_as_modelled(self):
        """The request the last step acted on: its read agrees with the model, its history with the table."""
        for m in self.requests:
            if m.uuid == self.touched:
                self.agrees(m, self.read(m))
                self.check_history(m)

    @invariant()
    def one_result_at_most(self):
        r = self.call("op", "GET", "/api/v1/results", params={"limit": 1000})
        self.expect(r, 200, "results listing")
        per_request: dict[str, list[str]] = {}
        for item in r.json()["items"]:
            per_request.setdefault(item["result"]["request_uuid"], []).append(item["uuid"])
        for m in self.requests:
            found = per_request.get(m.uuid, [])
            assert len(found) <= 1, f"{m.uuid} has {len(found)} results"
            assert (len(found) == 1) == (m.status == "resolved"), f"{m.uuid} is {m.status} with results {found}"
            if found:
                assert found == [m.result]

    @invariant()
    def listings_agree_with_reads(self):
        statuses = {m.uuid: m.status for m in self.requests}
        page = self.call("op", "GET", "/api/v1/requests", params={"limit": 1000})
        self.expect(page, 200, "requests listing")
        items = {i["uuid"]: i for i in page.json()["items"]}
        assert set(items) == set(statuses)
        for m in self.requests:  # the listing shows each request as its read does (checked against the model)
            self.agrees(m, items[m.uuid])
        every = self.call("alice", "GET", "/all_requests/")
        self.expect(every, 200, "FINALES2 all_requests")
        assert {i["uuid"]: i["status"] for i in every.json()} == statuses
        for tenant in TENANTS:
            pending = self.call(tenant, "GET", "/pending_requests/")
            self.expect(pending, 200, "FINALES2 pending_requests")
            assert [i["uuid"] for i in pending.json()] == [m.uuid for m in self.requests if m.status == "pending"]


RequestLifecycle.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
    suppress_health_check=list(HealthCheck),
)
test_request_lifecycle = RequestLifecycle.TestCase

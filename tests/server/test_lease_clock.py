"""Leases and the clocks: a lease runs out after its length without a heartbeat, measured on the
sweeper's monotonic clock; a server's wall clock stepped forward or back changes nothing
(issue: trust for an unattended night). Both clocks are stepped by hand here."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from labweave.services.server import leases, lifecycle, requests
from labweave.services.server.leases import LeaseSweeper

from .helpers import SteppedClock, flow_lab, flow_request

HOUR = 3600.0


@pytest.fixture
def lab(database_url):
    return flow_lab(database_url)


@pytest.fixture
def wall(monkeypatch):
    """The wall clock the request and lease modules read, steppable; it starts at the real time.

    (Tokens keep the real clock: their own checks are another test's business.)
    """
    clock = SteppedClock(time.time())
    for module in (requests, leases, lifecycle):
        monkeypatch.setattr(module, "time", SimpleNamespace(time=clock, monotonic=time.monotonic))
    return clock


def claimed(lab, lease_seconds: float) -> str:
    lab.post("alice", "/requests/", json=flow_request())
    r = lab.post("asab", "/api/v1/claims", json={"lease_seconds": lease_seconds})
    assert r.status_code == 200, r.text
    return r.json()["request"]["uuid"]


def status(lab, uuid: str) -> str:
    return lab.get("op", f"/api/v1/requests/{uuid}").json()["status"]


def heartbeat(lab, uuid: str) -> None:
    assert lab.post("asab", f"/api/v1/requests/{uuid}/heartbeat").status_code == 200


def test_a_wall_clock_stepped_forward_an_hour_expires_no_lease(lab, wall):
    monotonic = SteppedClock()
    sweeper = LeaseSweeper(lab.lab.db, 3, monotonic)
    uuids = [claimed(lab, 60) for _ in range(3)]
    assert sweeper.sweep() == 0
    wall.step(HOUR)  # NTP (or an operator) steps the server's clock
    monotonic.step(5)
    assert sweeper.sweep() == 0
    assert [status(lab, u) for u in uuids] == ["reserved"] * 3
    # what the lease shows is still the wall clock's (displayed, not deciding)
    shown = lab.get("op", f"/api/v1/requests/{uuids[0]}").json()["lease_expires_at"]
    assert shown is not None
    monotonic.step(56)  # the leases' length has now passed on the sweeper's own clock
    assert sweeper.sweep() == 3
    assert [status(lab, u) for u in uuids] == ["pending"] * 3


def test_a_wall_clock_stepped_back_keeps_no_lease_alive(lab, wall):
    monotonic = SteppedClock()
    sweeper = LeaseSweeper(lab.lab.db, 3, monotonic)
    uuid = claimed(lab, 60)
    sweeper.sweep()
    wall.step(-24 * HOUR)
    monotonic.step(59)
    assert sweeper.sweep() == 0 and status(lab, uuid) == "reserved"
    monotonic.step(1)  # the tenant died: no heartbeat for the lease's length
    assert sweeper.sweep() == 1
    detail = lab.get("op", f"/api/v1/requests/{uuid}").json()
    assert detail["status"] == "pending" and detail["lease_expiries"] == 1


def test_heartbeats_keep_a_lease_however_the_wall_clock_moves(lab, wall):
    monotonic = SteppedClock()
    sweeper = LeaseSweeper(lab.lab.db, 3, monotonic)
    uuid = claimed(lab, 10)
    sweeper.sweep()
    for step in (HOUR, -2 * HOUR, 30.0, -HOUR):
        monotonic.step(8)
        wall.step(step)
        heartbeat(lab, uuid)
        assert sweeper.sweep() == 0  # sees the new beat: counts from here
    monotonic.step(9)
    assert sweeper.sweep() == 0 and status(lab, uuid) == "reserved"
    monotonic.step(1)
    assert sweeper.sweep() == 1 and status(lab, uuid) == "pending"


def test_a_heartbeat_between_look_and_expiry_wins_on_every_replica(lab):
    first, second = SteppedClock(), SteppedClock(50_000.0)  # two replicas: clocks of their own
    a, b = LeaseSweeper(lab.lab.db, 3, first), LeaseSweeper(lab.lab.db, 3, second)
    uuid = claimed(lab, 10)
    a.sweep()
    second.step(4)
    b.sweep()  # replica b first saw the lease 4 s after a did
    first.step(10)
    due = a.due()
    assert len(due) == 1
    heartbeat(lab, uuid)  # lands after replica a decided, before it writes
    assert a.expire(due) == 0 and status(lab, uuid) == "reserved"
    second.step(10)
    assert b.sweep() == 0  # b saw the new beat now: the lease runs from here on b's clock too
    first.step(10)
    second.step(10)
    assert a.sweep() + b.sweep() == 1  # one of them expires it once; the other finds nothing left
    assert status(lab, uuid) == "pending"


def test_a_new_claim_restarts_the_count(lab):
    monotonic = SteppedClock()
    sweeper = LeaseSweeper(lab.lab.db, 3, monotonic)
    uuid = claimed(lab, 10)
    sweeper.sweep()
    lab.post("asab", f"/requests/{uuid}/update_status/", params={"request_id": uuid, "new_status": "pending"})
    monotonic.step(9)
    assert lab.post("asab2", "/api/v1/claims", json={"lease_seconds": 10}).json()["request"]["uuid"] == uuid
    monotonic.step(2)  # 11 s since the first claim was seen, 2 s into the second
    assert sweeper.sweep() == 0 and status(lab, uuid) == "reserved"
    monotonic.step(10)
    assert sweeper.sweep() == 1

"""Fault: the tenant is killed (SIGKILL) in the middle of a growth and started again."""

from __future__ import annotations

import time

import pytest

from .audit import audit
from .lab import wait_for

pytestmark = pytest.mark.slow


def test_a_tenant_killed_mid_run_loses_its_lease_and_the_growth_is_done_once(make_lab):
    lab = make_lab({"LABWEAVE_LEASE_SECONDS": "2", "LABWEAVE_SWEEP_SECONDS": "0.5"})
    tenant, optimizer = lab.launch("tenant-killed", pulses=(1200, 1800), lease=2)

    # a growth under way (its lease already renewed once): kill the chamber's daemon without a goodbye
    def running():
        rows = lab.query("SELECT uuid FROM request WHERE campaign = 'tenant-killed' AND status = 'reserved'")
        return rows[0]["uuid"] if rows else None

    victim = wait_for(running, 90, "a growth under way")
    time.sleep(1.0)
    assert lab.query("SELECT status FROM request WHERE uuid = ?", victim)[0]["status"] == "reserved"
    tenant.kill()
    killed_at = time.time()

    # the lease runs out and the sweeper puts the request back; a restarted daemon takes it again
    wait_for(lambda: lab.query("SELECT status FROM request WHERE uuid = ?", victim)[0]["status"] == "pending",
             15, "the dead tenant's lease to expire")
    assert time.time() - killed_at < 2 + 0.5 + 5  # the lease, a sweep, and slack for a loaded machine
    tenant = lab.tenant(lease=2)
    lab.wait_finished(optimizer, 120)
    assert tenant.stop() == 0, tenant.tail()

    figures = audit(lab, "tenant-killed", budget=6)
    assert figures["statuses"] == {"resolved": 6}
    history = [(e["from_status"], e["to_status"], e["actor"]) for e in lab.query(
        "SELECT * FROM event WHERE kind = 'request.status' AND subject = ? ORDER BY id", victim)]
    assert ("reserved", "pending", "lease-sweeper") in history
    assert [h for h in history if h[1] == "resolved"] == [("reserved", "resolved", "chamber")]

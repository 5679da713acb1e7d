"""Fault: the network between the tenant and the server is cut for longer than the tenant's lease and its
client's retries (a loopback proxy resets every connection and drops new ones), then passes again."""

from __future__ import annotations

import time

import pytest

from .audit import audit
from .lab import wait_for
from .link import Link

pytestmark = pytest.mark.slow

CUT_SECONDS = 12.0
LEASE = 3.0


def test_a_tenant_cut_off_from_the_server_carries_on_when_the_link_is_back(make_lab):
    lab = make_lab({"LABWEAVE_SWEEP_SECONDS": "0.5"})
    with Link(lab.port) as link:
        tenant, optimizer = lab.launch("network-cut", pulses=(1200, 1800), lease=LEASE, tenant_url=link.url)
        lab.wait_under_way("network-cut", 2, lambda: lab.count("network-cut", "reserved"))
        held = lab.query("SELECT uuid FROM request WHERE campaign = 'network-cut' AND status = 'reserved'")[0][0]
        link.cut()
        # the server stops hearing from the tenant: its lease runs out and the growth goes back to the queue
        wait_for(lambda: any(e["to_status"] == "pending" for e in lab.query(
            "SELECT to_status FROM event WHERE subject = ? AND actor = 'lease-sweeper'", held)),
            LEASE + 5, "the cut-off tenant's lease to run out")
        time.sleep(CUT_SECONDS - LEASE)
        assert tenant.alive(), tenant.tail()
        dropped = link.dropped
        link.mend()
        lab.wait_finished(optimizer, 120)
        assert tenant.stop() == 0, tenant.tail()

    figures = audit(lab, "network-cut", budget=6)
    assert figures["statuses"] == {"resolved": 6} and figures["lease_expiries"] >= 1
    assert dropped > 1  # the open connections (its event stream among them) and the attempts during the cut
    assert "server unavailable" in lab.logs("tenant")  # it outlived its client's retries, and waited

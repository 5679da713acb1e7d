"""Fault: the server is killed (SIGKILL) under load, stays down a while, and is started again on the same
port and database; the tenant, the optimizer and a busy requester carry on by themselves."""

from __future__ import annotations

import time

import pytest

from .audit import audit
from .lab import wait_for
from .requester import Requester

pytestmark = pytest.mark.slow

DOWN_SECONDS = 8.0  # longer than the client's own retries (about 6 s): the daemons must wait it out


def test_the_server_killed_under_load_loses_nothing_acknowledged(make_lab):
    lab = make_lab({"LABWEAVE_SWEEP_SECONDS": "0.5"})
    tenant, optimizer = lab.launch("server-killed", lease=5)
    requester = Requester(lab.url, lab.tenants["requesters"])
    requester.start()
    try:
        lab.wait_under_way("server-killed")
        lab.kill_server()
        acknowledged_before = list(requester.acknowledged)
        time.sleep(DOWN_SECONDS)
        assert tenant.alive() and optimizer.alive(), lab.tail_all()
        stored = {r["uuid"] for r in lab.query("SELECT uuid FROM request")}
        assert set(acknowledged_before) <= stored  # before the restart: on disk when acknowledged
        posted_while_down = len(requester.acknowledged) - len(acknowledged_before)
        lab.start_server()
        posted = len(requester.acknowledged)
        wait_for(lambda: len(requester.acknowledged) > posted + 5, 30, "the requester posting again")
        requester.halt()
        lab.wait_finished(optimizer, 120)
    finally:
        requester.halt()
    lab.wait_all_ended(90)
    assert tenant.stop() == 0, tenant.tail()

    figures = audit(lab, "server-killed", budget=6, acknowledged_requests=set(requester.acknowledged))
    assert figures["statuses"] == {"resolved": 6}
    assert posted_while_down == 0 and requester.errors["ConnectError"] > 0
    assert len(lab.daemons) == 2  # neither daemon had to be started again
